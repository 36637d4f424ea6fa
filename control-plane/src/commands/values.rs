//! The domain enums the command line takes as values. Their clap impls live here, not on the
//! types: only the command line knows clap. The names are clap's kebab-case ones (`roc-auc`).

use clap::ValueEnum;
use clap::builder::PossibleValue;

use crate::config::{Metric, TaskKind};
use crate::pipeline::StepName;

impl ValueEnum for Metric {
    fn value_variants<'a>() -> &'a [Self] {
        &Metric::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Metric::RocAuc => "roc-auc",
            Metric::LogLoss => "log-loss",
            other => other.name(),
        }))
    }
}

impl ValueEnum for StepName {
    fn value_variants<'a>() -> &'a [Self] {
        &StepName::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.as_str()))
    }
}

impl ValueEnum for TaskKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[TaskKind::Classification, TaskKind::Regression]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            TaskKind::Classification => "classification",
            TaskKind::Regression => "regression",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_and_steps_parse_by_their_command_line_names() {
        assert_eq!(Metric::from_str("roc-auc", false), Ok(Metric::RocAuc));
        assert_eq!(Metric::from_str("f1", false), Ok(Metric::F1));
        assert!(Metric::from_str("roc_auc", false).is_err());
        assert_eq!(TaskKind::from_str("regression", false), Ok(TaskKind::Regression));
        assert_eq!(
            TaskKind::from_str("classification", false),
            Ok(TaskKind::Classification)
        );
        for step in StepName::ALL {
            assert_eq!(StepName::from_str(step.as_str(), false), Ok(step));
        }
    }
}

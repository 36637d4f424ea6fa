//! The one error type of the wasmtime host.

use std::time::Duration;

/// What went wrong loading or running a model module. Each variant is a *kind* a server can map
/// to a response: [`Input`](HostError::Input) is the caller's fault (400); [`Busy`](HostError::Busy)
/// is the host's load (503, try again); the others are the module's (refuse the module, 500).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The bytes are not a module this host runs: not WebAssembly, truncated, invalid, importing
    /// something, missing or mistyping an ABI export, another ABI version, buffers that do not fit.
    /// Also returned when a loaded module breaks the ABI at run time (an unknown status, a label
    /// out of range).
    #[error("invalid model module: {0}")]
    InvalidModule(String),

    /// A row the module (or the host, for a row of the wrong width) refused. `row` indexes the
    /// rows given to the call; `feature` is a feature index the caller maps to a name.
    #[error("{}", input_message(*.row, *.feature, .message))]
    Input {
        row: usize,
        feature: Option<usize>,
        message: String,
    },

    /// One call into the module ran past its epoch deadline and was stopped.
    #[error("the model did not finish within its deadline of {0:?}")]
    Timeout(Duration),

    /// The module trapped (unreachable, out-of-bounds access, stack overflow, ...).
    #[error("the model module trapped: {0}")]
    Trap(String),

    /// A sandbox limit was hit: the module asked for more memory (or table) than allowed.
    #[error("resource limit: {0}")]
    Limits(String),

    /// No instance was free: every slot of the runtime's instance pool is held by a call, and the
    /// caller could not wait (or waited past its [`QueueLimits`](crate::QueueLimits)). Says
    /// nothing of the module: the same call may succeed a moment later.
    #[error("no instance free: {0}")]
    Busy(String),
}

impl HostError {
    /// Whether the same call may succeed when tried again: the host was busy
    /// ([`Busy`](HostError::Busy)), or a call ran past its deadline
    /// ([`Timeout`](HostError::Timeout)), which a loaded machine can cause to a module that
    /// is fine. Every other kind is a property of the module or of the input.
    pub fn is_transient(&self) -> bool {
        matches!(self, HostError::Busy(_) | HostError::Timeout(_))
    }
}

fn input_message(row: usize, feature: Option<usize>, message: &str) -> String {
    match feature {
        Some(feature) => format!("row {row}, feature {feature}: {message}"),
        None => format!("row {row}: {message}"),
    }
}

/// `Result` with [`HostError`].
pub type Result<T, E = HostError> = std::result::Result<T, E>;

/// Raised by the store's resource limiter; travels through wasmtime as the cause of a trap and
/// comes back out as [`HostError::Limits`].
#[derive(Debug, thiserror::Error)]
#[error("the module asked for {desired} {unit} of {what}, the limit is {limit}")]
pub(crate) struct LimitExceeded {
    pub(crate) what: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) desired: usize,
    pub(crate) limit: usize,
}

/// Maps an error from instantiating or calling into a module to its kind.
pub(crate) fn from_wasmtime(error: &wasmtime::Error, deadline: Duration) -> HostError {
    // `downcast_ref` looks through the whole context chain.
    if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
        return HostError::Limits(limit.to_string());
    }
    if let Some(trap) = error.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::Interrupt => HostError::Timeout(deadline),
            other => HostError::Trap(other.to_string()),
        };
    }
    // The host counts slots before instantiating (see `pool`), so this is a safety net.
    if error.is::<wasmtime::PoolConcurrencyLimitError>() {
        return HostError::Busy(format!("the instance pool is exhausted: {}", chain(error)));
    }
    HostError::Trap(chain(error))
}

/// The error and its causes on one line, `outer: inner: root`.
pub(crate) fn chain(error: &wasmtime::Error) -> String {
    error.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_messages_name_row_and_feature() {
        let with = HostError::Input {
            row: 3,
            feature: Some(1),
            message: "NaN".into(),
        };
        assert_eq!(with.to_string(), "row 3, feature 1: NaN");
        let without = HostError::Input {
            row: 0,
            feature: None,
            message: "expected 2 features, got 3".into(),
        };
        assert_eq!(without.to_string(), "row 0: expected 2 features, got 3");
    }

    #[test]
    fn wasmtime_errors_map_to_kinds() {
        let deadline = Duration::from_millis(7);
        let interrupt = wasmtime::Error::new(wasmtime::Trap::Interrupt);
        assert_eq!(from_wasmtime(&interrupt, deadline), HostError::Timeout(deadline));

        let unreachable = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert!(matches!(from_wasmtime(&unreachable, deadline), HostError::Trap(_)));

        let limit = wasmtime::Error::new(LimitExceeded {
            what: "memory",
            unit: "bytes",
            desired: 2,
            limit: 1,
        })
        .context("while growing memory");
        assert!(matches!(from_wasmtime(&limit, deadline), HostError::Limits(m) if m.contains("memory")));
    }

    #[test]
    fn only_busy_and_timeout_are_transient() {
        assert!(HostError::Busy("full".into()).is_transient());
        assert!(HostError::Timeout(Duration::from_millis(1)).is_transient());
        for permanent in [
            HostError::InvalidModule("x".into()),
            HostError::Trap("unreachable".into()),
            HostError::Limits("memory".into()),
            HostError::Input {
                row: 0,
                feature: None,
                message: "x".into(),
            },
        ] {
            assert!(!permanent.is_transient(), "{permanent}");
        }
    }
}

//! The profile as one self-contained HTML page: inline CSS and SVG, no script, no external asset,
//! so it opens offline and can be attached to a run as a single file.

use super::{ColumnProfile, ColumnSummary, Correlations, DatasetProfile, Frequencies, NumericStats, WarningKind};

/// A self-contained HTML report of a profile.
pub(crate) fn render_html(profile: &DatasetProfile) -> String {
    let name = esc(&profile.dataset);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str(&format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{name} · data profile</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
    ));

    let cells = profile.rows * profile.columns.len() as u64;
    let missing: u64 = profile.columns.iter().map(|c| c.missing).sum();
    let share = if cells == 0 { 0.0 } else { missing as f64 / cells as f64 };
    out.push_str(&format!(
        "<header>\n<p class=\"muted\">Data profile</p>\n<h1>{name}</h1>\n<p class=\"meta\">{} rows · {} columns · \
         {} missing cells ({}) · {} warning{}</p>\n</header>\n",
        thousands(profile.rows),
        profile.columns.len(),
        thousands(missing),
        pct(share),
        profile.warnings.len(),
        if profile.warnings.len() == 1 { "" } else { "s" },
    ));

    warnings(&mut out, profile);
    overview(&mut out, profile);
    out.push_str("<section>\n<h2>Columns</h2>\n");
    for (i, c) in profile.columns.iter().enumerate() {
        column(&mut out, i, c);
    }
    out.push_str("</section>\n<section>\n<h2 id=\"correlations\">Correlations</h2>\n");
    correlations(&mut out, &profile.correlations);
    out.push_str("</section>\n</main>\n</body>\n</html>\n");
    out
}

const CSS: &str = "
:root{color-scheme:light;--fg:#1d2433;--muted:#5f6b7c;--line:#e3e7ed;--card:#f7f8fa;--accent:#2f62c9}
*{box-sizing:border-box}
body{margin:0;background:#fff;color:var(--fg);font:15px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Helvetica Neue\",Arial,sans-serif}
main{max-width:1080px;margin:0 auto;padding:12px 16px 40px}
h1{font-size:1.7rem;margin:0 0 .2em;line-height:1.2}
h2{font-size:1.2rem;margin:1.8em 0 .6em;padding-bottom:.2em;border-bottom:1px solid var(--line)}
h3{font-size:1.05rem;margin:0 0 .6em}
h1,h3,.overview td,li{overflow-wrap:anywhere}
p{margin:.3em 0}
a{color:var(--accent);text-decoration:none}
a:hover{text-decoration:underline}
.muted,.meta{color:var(--muted)}
.muted{margin:0;font-size:.85rem;text-transform:uppercase;letter-spacing:.05em}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 12px 3px 0;text-align:left;vertical-align:top}
.overview{width:100%}
.overview th,.overview td{border-bottom:1px solid var(--line);padding:4px 12px 4px 0}
.overview th{font-size:.85rem;color:var(--muted);font-weight:600}
.n{text-align:right}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:12px 0}
.row{display:flex;flex-wrap:wrap;gap:12px 32px;align-items:flex-start}
.facts{flex:0 1 330px;min-width:0}
.stats th{font-weight:400;color:var(--muted);white-space:nowrap}
.stats td{text-align:right;padding-right:20px;white-space:nowrap}
.badge{display:inline-block;font-size:.75rem;font-weight:400;line-height:1.6;padding:0 8px;border-radius:99px;border:1px solid var(--line);background:#fff;color:var(--muted);vertical-align:middle;margin-left:6px}
.warn{background:#fff4e0;border-color:#f3d19c;color:#7a4a00;margin:0 6px 0 0}
.warnings{list-style:none;padding:0;margin:0}
.warnings li{padding:5px 0;border-bottom:1px solid var(--line)}
figure{margin:0;flex:1 1 300px;max-width:460px}
svg{display:block;max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;font-size:11px;fill:#3d4756}
.bar{fill:#4f7fd9}
.bar:hover{fill:#2f62c9}
.other{fill:#a9b3c1}
.axis{stroke:#c3cad4;stroke-width:1}
@media (max-width:480px){main{padding:8px 10px 32px}.card{padding:10px}.stats th,.stats td{padding-right:8px}}
";

fn warnings(out: &mut String, profile: &DatasetProfile) {
    out.push_str("<section>\n<h2 id=\"warnings\">Warnings</h2>\n");
    if profile.warnings.is_empty() {
        out.push_str("<p>Nothing to report.</p>\n</section>\n");
        return;
    }
    out.push_str("<ul class=\"warnings\">\n");
    for w in &profile.warnings {
        let link = |name: &str| match profile.columns.iter().position(|c| c.name == name) {
            Some(i) => format!("<a href=\"#col-{i}\"><b>{}</b></a>", esc(name)),
            None => format!("<b>{}</b>", esc(name)),
        };
        let subject = match &w.other_column {
            Some(other) if w.kind == WarningKind::HighCorrelation => {
                let r = profile
                    .correlations
                    .get(&w.column, other)
                    .map_or(String::new(), |r| format!(" (r = {r:.3})"));
                format!("{} and {} are highly correlated{r}", link(&w.column), link(other))
            }
            _ => format!("{} {}", link(&w.column), esc(&w.message)),
        };
        out.push_str(&format!(
            "<li><span class=\"badge warn\">{}</span>{subject}</li>\n",
            w.kind.as_str()
        ));
    }
    out.push_str("</ul>\n</section>\n");
}

fn overview(out: &mut String, profile: &DatasetProfile) {
    out.push_str(
        "<section>\n<h2>Overview</h2>\n<table class=\"overview\">\n<thead><tr><th>Column</th><th>Type</th>\
         <th class=\"n\">Missing</th><th class=\"n\">Distinct</th></tr></thead>\n<tbody>\n",
    );
    for (i, c) in profile.columns.iter().enumerate() {
        out.push_str(&format!(
            "<tr><td><a href=\"#col-{i}\">{}</a></td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&c.name),
            c.ty,
            pct(c.missing_share),
            thousands(c.distinct),
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
}

fn column(out: &mut String, index: usize, c: &ColumnProfile) {
    out.push_str(&format!(
        "<article class=\"card\" id=\"col-{index}\">\n<h3>{}<span class=\"badge\">{}</span></h3>\n<div class=\"row\">\n",
        esc(&c.name),
        c.ty
    ));
    let mut stats: Vec<(&str, String)> = vec![
        ("Count", thousands(c.count)),
        (
            "Missing",
            format!("{} ({})", thousands(c.missing), pct(c.missing_share)),
        ),
        ("Distinct", thousands(c.distinct)),
    ];
    let chart = match &c.summary {
        ColumnSummary::Numeric(s) => {
            let q = &s.quantiles;
            stats.extend([
                ("Zeros", thousands(s.zeros)),
                ("Mean", num(s.mean)),
                ("Std", opt(s.std)),
                ("Min", num(s.min)),
                ("Max", num(s.max)),
                ("5%", num(q.p5)),
                ("25%", num(q.p25)),
                ("Median", num(q.p50)),
                ("75%", num(q.p75)),
                ("95%", num(q.p95)),
                ("Skewness", opt(s.skewness)),
            ]);
            if s.non_finite > 0 {
                stats.push(("NaN / inf", thousands(s.non_finite)));
            }
            histogram_svg(&c.name, s)
        }
        ColumnSummary::Frequencies(f) => {
            stats.push(("Charted", format!("{} of {}", f.top.len(), thousands(c.distinct))));
            if f.other > 0 {
                stats.push(("Other", thousands(f.other)));
            }
            frequency_svg(&c.name, f)
        }
        ColumnSummary::Empty => String::from("<p>No values to chart.</p>"),
    };
    // Two statistics per row keeps the table about as tall as the chart.
    out.push_str("<div class=\"facts\"><table class=\"stats\">\n");
    for pair in stats.chunks(2) {
        out.push_str("<tr>");
        for (k, v) in pair {
            out.push_str(&format!("<th>{k}</th><td>{v}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></div>\n<figure>\n");
    out.push_str(&chart);
    out.push_str("\n</figure>\n</div>\n</article>\n");
}

fn histogram_svg(name: &str, s: &NumericStats) -> String {
    let (w, h) = (420.0, 190.0);
    let (left, right, top, bottom) = (44.0, 10.0, 10.0, 34.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let counts = &s.histogram.counts;
    let edges = &s.histogram.edges;
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let bw = pw / counts.len() as f64;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Histogram of {}\">\n",
        esc(name)
    );
    for (i, count) in counts.iter().enumerate() {
        let bh = if *count == 0 {
            0.0
        } else {
            (*count as f64 / max * ph).max(1.0)
        };
        let close = if i + 1 == counts.len() { "]" } else { ")" };
        // A transparent full-height target under each bar so short and empty bins have a tooltip too.
        let x = left + i as f64 * bw;
        svg.push_str(&format!(
            "<g><title>[{}, {}{close}: {}</title>\
             <rect x=\"{x:.1}\" y=\"{top}\" width=\"{bw:.1}\" height=\"{ph}\" fill=\"transparent\"/>\
             <rect class=\"bar\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\"/></g>\n",
            num(edges[i]),
            num(edges[i + 1]),
            thousands(*count),
            x + 0.5,
            top + ph - bh,
            (bw - 1.0).max(0.5),
        ));
    }
    let base = top + ph;
    svg.push_str(&format!(
        "<line class=\"axis\" x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\"/>\n\
         <line class=\"axis\" x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{base}\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>\n\
         <text x=\"{left}\" y=\"{}\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">count per bin · {} bins</text>\n</svg>",
        left + pw,
        left - 6.0,
        top + 9.0,
        thousands(max as u64),
        left - 6.0,
        base,
        base + 15.0,
        num(edges[0]),
        left + pw / 2.0,
        base + 15.0,
        num((edges[0] + edges[edges.len() - 1]) / 2.0),
        left + pw,
        base + 15.0,
        num(edges[edges.len() - 1]),
        left + pw / 2.0,
        base + 30.0,
        counts.len(),
    ));
    svg
}

fn frequency_svg(name: &str, f: &Frequencies) -> String {
    let mut rows: Vec<(String, u64, bool)> = f.top.iter().map(|v| (v.value.clone(), v.count, false)).collect();
    if f.other > 0 {
        rows.push(("(other)".to_owned(), f.other, true));
    }
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1) as f64;
    let (w, label_w, count_w, row_h) = (420.0, 130.0, 80.0, 20.0);
    let bar_w = w - label_w - count_w;
    let h = rows.len() as f64 * row_h + 4.0;
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"Most frequent values of {}\">\n",
        esc(name)
    );
    for (i, (value, count, other)) in rows.iter().enumerate() {
        let y = 2.0 + i as f64 * row_h;
        let len = (*count as f64 / max * bar_w).max(1.0);
        let share = pct(*count as f64 / total as f64);
        let label = if *other {
            "(other)".to_owned()
        } else {
            esc(&clip(value, 20))
        };
        svg.push_str(&format!(
            "<g><title>{}: {} ({share})</title>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"{}\" x=\"{label_w}\" y=\"{:.1}\" width=\"{len:.1}\" height=\"{:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>\n",
            esc(value),
            thousands(*count),
            label_w - 6.0,
            y + 14.0,
            if *other { "other" } else { "bar" },
            y + 3.0,
            row_h - 6.0,
            label_w + len + 5.0,
            y + 14.0,
            thousands(*count),
        ));
    }
    svg.push_str("</svg>");
    svg
}

fn correlations(out: &mut String, c: &Correlations) {
    let k = c.columns.len();
    if k < 2 {
        out.push_str("<p>Correlations need at least two numeric columns.</p>\n");
        return;
    }
    out.push_str(
        "<p>Pearson correlation of each pair of numeric columns, over the rows where both are present. \
         Blank cells are undefined (a column without spread).</p>\n",
    );
    let cell: f64 = if k <= 12 {
        44.0
    } else {
        (560.0 / k as f64).clamp(12.0, 44.0)
    };
    let show_values = cell >= 30.0;
    let longest = c.columns.iter().map(|n| clip(n, 24).chars().count()).max().unwrap_or(1) as f64;
    let label = longest * 6.4 + 10.0;
    // Column labels are rotated 45 degrees above the matrix, so they take ~0.71 of their length in
    // height and reach past the right edge by as much.
    let (left, top) = (label, label * 0.71 + 10.0);
    let side = cell * k as f64;
    let (w, h) = (left + side + label * 0.71, top + side + 56.0);
    out.push_str(&format!(
        "<svg viewBox=\"0 0 {w:.0} {h:.0}\" width=\"{w:.0}\" height=\"{h:.0}\" role=\"img\" \
         aria-label=\"Correlation matrix\">\n"
    ));
    for (i, name) in c.columns.iter().enumerate() {
        let short = esc(&clip(name, 24));
        let mid = i as f64 * cell + cell / 2.0;
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\"><title>{}</title>{short}</text>\n",
            left - 6.0,
            top + mid + 4.0,
            esc(name)
        ));
        let (x, y) = (left + mid, top - 6.0);
        out.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" transform=\"rotate(-45 {x:.1} {y:.1})\"><title>{}</title>{short}</text>\n",
            esc(name)
        ));
    }
    for (i, row) in c.values.iter().enumerate() {
        for (j, r) in row.iter().enumerate() {
            let (x, y) = (left + j as f64 * cell, top + i as f64 * cell);
            let tip = format!(
                "{} × {}: {}",
                esc(&c.columns[i]),
                esc(&c.columns[j]),
                r.map_or("undefined".to_owned(), |r| format!("r = {r:.3}"))
            );
            out.push_str(&format!(
                "<g><title>{tip}</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cell:.1}\" height=\"{cell:.1}\" \
                 fill=\"{}\" stroke=\"#fff\"/>",
                r.map_or("#eef0f3".to_owned(), colour),
            ));
            if let (true, Some(r)) = (show_values, r) {
                let ink = if r.abs() > 0.55 { "#fff" } else { "#1d2433" };
                out.push_str(&format!(
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" style=\"fill:{ink}\">{}</text>",
                    x + cell / 2.0,
                    y + cell / 2.0 + 4.0,
                    format!("{r:.2}").replace('-', "−"),
                ));
            }
            out.push_str("</g>\n");
        }
    }
    // Legend: the diverging scale from -1 to 1.
    let (lx, ly, lw) = (left, top + side + 18.0, side.clamp(160.0, 320.0));
    out.push_str("<defs><linearGradient id=\"corr-scale\">");
    for step in 0..=8 {
        let r = -1.0 + step as f64 * 0.25;
        out.push_str(&format!(
            "<stop offset=\"{}%\" stop-color=\"{}\"/>",
            step as f64 * 12.5,
            colour(r)
        ));
    }
    out.push_str(&format!(
        "</linearGradient></defs>\n<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"{lw:.1}\" height=\"12\" fill=\"url(#corr-scale)\"/>\n\
         <text x=\"{lx:.1}\" y=\"{:.1}\">−1</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">0</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">+1</text>\n</svg>\n",
        ly + 28.0,
        lx + lw / 2.0,
        ly + 28.0,
        lx + lw,
        ly + 28.0,
    ));
}

/// A diverging blue-white-red colour for a correlation in [-1, 1] (ColorBrewer RdBu).
fn colour(r: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (-1.0, [33.0, 102.0, 172.0]),
        (-0.5, [146.0, 197.0, 222.0]),
        (0.0, [247.0, 247.0, 247.0]),
        (0.5, [244.0, 165.0, 130.0]),
        (1.0, [178.0, 24.0, 43.0]),
    ];
    let r = r.clamp(-1.0, 1.0);
    let i = STOPS
        .iter()
        .rposition(|(at, _)| *at <= r)
        .unwrap_or(0)
        .min(STOPS.len() - 2);
    let (a, ca) = STOPS[i];
    let (b, cb) = STOPS[i + 1];
    let t = (r - a) / (b - a);
    let c: Vec<u8> = (0..3).map(|k| (ca[k] + (cb[k] - ca[k]) * t).round() as u8).collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Escapes text for HTML element content and quoted attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// At most `n` characters, with an ellipsis when cut.
fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// A number for people: integers as they are, others to four significant digits, very large or
/// small ones in exponent form.
fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 {
        "0".to_owned()
    } else if x.fract() == 0.0 && a < 1e15 {
        format!("{x:.0}")
    } else if !(1e-3..1e6).contains(&a) {
        format!("{x:.3e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{x:.decimals$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.')
        } else {
            &s
        };
        s.to_owned()
    }
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "–".to_owned(), num)
}

fn pct(share: f64) -> String {
    if share > 0.0 && share < 0.001 {
        "&lt;0.1%".to_owned()
    } else {
        format!("{:.1}%", share * 100.0)
    }
}

/// An integer with thin-space thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{numbers, texts, tiny};
    use super::*;
    use crate::config::ProfileConfig;
    use crate::data::{ColumnType, Table};
    use crate::profile::build_profile;

    #[test]
    fn page_has_a_chart_per_column_and_no_external_asset() {
        let p = build_profile("tiny", &tiny(), &ProfileConfig::default());
        let html = render_html(&p);
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("name=\"viewport\""));
        // One chart per column and the correlation heatmap with its legend.
        assert_eq!(html.matches("<svg").count(), p.columns.len() + 1);
        assert!(html.contains("linearGradient"));
        for needle in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "@import",
            "url(http",
            "<script",
        ] {
            assert!(!html.contains(needle), "found {needle}");
        }
        assert!(html.contains("6 rows · 4 columns"), "header");
        assert!(html.contains("Nothing to report"));
    }

    #[test]
    fn data_strings_are_escaped() {
        let nasty = "<b>&\"x\"";
        let table = Table {
            columns: vec![
                numbers(nasty, &[Some(1.0), Some(2.0), Some(4.0)]),
                numbers("y", &[Some(1.0), Some(2.0), Some(3.9)]),
                texts(
                    "c",
                    ColumnType::Categorical,
                    &[Some("<script>alert(1)</script>"), Some("a'b"), Some("a'b")],
                ),
            ],
        };
        let html = render_html(&build_profile("<ds>", &table, &ProfileConfig::default()));
        assert!(
            !html.contains(nasty) && !html.contains("&\"x\""),
            "raw column name in the page"
        );
        assert!(html.contains("&lt;b&gt;&amp;&quot;x&quot;"));
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<title>&lt;ds&gt; · data profile</title>"));
        // The pair is correlated, and the warning names both columns, escaped.
        assert!(html.contains("high correlation"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(8.4), "8.4");
        assert_eq!(num(14.0), "14");
        assert_eq!(num(0.99674), "0.9967");
        assert_eq!(num(-0.1234567), "-0.1235");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(1.5e-5), "1.500e-5");
        assert_eq!(thousands(1599), "1\u{202f}599");
        assert_eq!(thousands(999), "999");
        assert_eq!(colour(0.0), "#f7f7f7");
        assert_eq!(colour(1.0), "#b2182b");
        assert_eq!(colour(-1.0), "#2166ac");
    }
}

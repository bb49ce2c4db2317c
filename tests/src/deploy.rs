//! The deployment manifests under `deploy/`: each kustomization rendered with sid's
//! kubectl and decoded strictly by `manifests-check`, and the PromQL of the dashboard
//! and the alerts taken apart into the metric names it reads.

use std::{
    collections::BTreeSet,
    io::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::{manifests_check_bin, sid_dir};

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every kustomization a user applies: the base (through `deploy/`) and each overlay.
pub const KUSTOMIZATIONS: [&str; 4] = [".", "prometheus-operator", "grafana", "tls"];

/// `kubectl kustomize deploy/DIR`, decoded by [`check`].
pub fn render(dir: &str) -> Result<Vec<Value>, String> {
    let path = deploy_dir().join(dir);
    let kubectl = sid_dir().join("usr/bin/kubectl");
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", kubectl.display()));
    if !out.status.success() {
        return Err(format!(
            "kubectl kustomize {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    check(&String::from_utf8(out.stdout).expect("kubectl prints UTF-8"))
}

/// Multi-document YAML decoded strictly into the Kubernetes Go types by
/// `manifests-check -json`: the documents as JSON, or its complaint (which document,
/// which field).
pub fn check(yaml: &str) -> Result<Vec<Value>, String> {
    let mut child = Command::new(manifests_check_bin())
        .arg("-json")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting manifests-check");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(yaml.as_bytes())
        .expect("writing to manifests-check");
    let out = child
        .wait_with_output()
        .expect("waiting for manifests-check");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("manifests-check -json prints a JSON array"))
}

/// The one document of `kind` among `docs`.
pub fn one<'d>(docs: &'d [Value], kind: &str) -> &'d Value {
    let found: Vec<&Value> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} among the documents");
    found[0]
}

/// The dashboard, `deploy/grafana/apiprof.json`.
pub fn dashboard() -> Value {
    let path = deploy_dir().join("grafana/apiprof.json");
    let text = std::fs::read_to_string(&path).expect("reading the dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every PromQL expression of the dashboard: each panel target's `expr`, and the
/// selector of each `label_values(SELECTOR, LABEL)` variable.
pub fn dashboard_queries(dashboard: &Value) -> Vec<String> {
    let mut queries = Vec::new();
    collect_exprs(&dashboard["panels"], &mut queries);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .expect("a query variable has a query");
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.trim())
            .unwrap_or_else(|| {
                panic!("variable query {query:?} is not label_values(SELECTOR, LABEL)")
            });
        queries.push(selector.to_owned());
    }
    queries
}

fn collect_exprs(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => into.push(expr.clone()),
                    _ => collect_exprs(v, into),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, into)),
        _ => {}
    }
}

/// `expr` with Grafana's variables replaced by what a dashboard user gets by default,
/// so Prometheus can run it: every instance and target, the top 10, a 1m rate window.
pub fn without_grafana_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("$top", "10")
        .replace("$instance", ".*")
        .replace("$target", ".*")
}

/// The metric names a PromQL expression reads: identifiers that are not functions or
/// aggregations (followed by `(`), keywords, label names (inside `{…}`, or after
/// `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`), durations,
/// numbers, strings or Grafana `$variables`.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 8] = [
        "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
    ];
    // Aggregations may put `by (…)` between their name and their `(`.
    const AGGREGATIONS: [&str; 14] = [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // The index just past what closes the bracket at `open` (strings skipped).
    let skip_to_close = |mut i: usize, open: char, close: char| {
        let mut depth = 0;
        while i < chars.len() {
            match chars[i] {
                '"' | '\'' | '`' => i = skip_string(&chars, i) - 1,
                c if c == open => depth += 1,
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_to_close(i, '{', '}');
        } else if c == '[' {
            i = skip_to_close(i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // A variable, a number or a duration (5m, 1e3, 0.99).
            i += 1;
            while i < chars.len() && (ident_char(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if ident_start(c) {
            let start = i;
            while i < chars.len() && ident_char(chars[i]) {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let call = chars.get(next) == Some(&'(');
            if GROUPING.contains(&ident.as_str()) {
                if call {
                    i = skip_to_close(next, '(', ')');
                }
            } else if !call
                && !KEYWORDS.contains(&ident.to_ascii_lowercase().as_str())
                && !AGGREGATIONS.contains(&ident.as_str())
            {
                names.insert(ident);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// The index just past the string that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The metric names of a text exposition's samples (a histogram's `_bucket`, `_sum`
/// and `_count` as they appear).
pub fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            line.split(|c: char| c == '{' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_leave_out_functions_labels_keywords_and_durations() {
        let expr = r#"max by (user_agent) (apiprof_client_throttled) > 0 or topk(10, sum by (user_agent, le) (rate(apiprof_requests_total{verb="list", user_agent=~"a{b}"}[5m])))
            / ignoring (user_agent) group_left sum without (x) (apiprof_cpu_seconds_total offset 1h) > bool 0.5
            and on(instance) histogram_quantile(0.99, apiprof_request_duration_seconds_bucket) or vector(1e3)"#;
        assert_eq!(
            metric_names(expr).into_iter().collect::<Vec<_>>(),
            [
                "apiprof_client_throttled",
                "apiprof_cpu_seconds_total",
                "apiprof_request_duration_seconds_bucket",
                "apiprof_requests_total"
            ]
        );
    }

    #[test]
    fn exported_names_are_the_samples_names() {
        let text = "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"1\"} 2\nb_bucket{le=\"+Inf\"} 1\nb_sum 0.1\nc 1\n";
        assert_eq!(
            exported(text).into_iter().collect::<Vec<_>>(),
            ["a_total", "b_bucket", "b_sum", "c"]
        );
    }
}

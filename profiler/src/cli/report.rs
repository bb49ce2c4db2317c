//! `apiprof report SOURCE`: aggregate a capture file, or ask a running daemon for the
//! same report over a window, and print it or write it to a file; `--diff` compares
//! it with a baseline as a differential flame graph.

use std::{
    io::{IsTerminal as _, Write as _},
    path::PathBuf,
};

use anyhow::{bail, Context as _};

use crate::{
    analyze::{aggregate::Analysis, filter::Filter, Dimension, DEFAULT_BY},
    capture::CaptureError,
    report::{self, Caption, Format, Weight},
    serve::{read_token, tls},
};

/// Arguments of `apiprof report`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// A capture file written by `apiprof record` (or `apiprof daemon --capture`), or a
    /// running daemon: `http://HOST:PORT` or `https://HOST:PORT`.
    source: String,
    /// With a daemon: how far back to look, e.g. `30s`, `10m`, `1h` (default 5m; whole
    /// time buckets).
    #[arg(long)]
    window: Option<String>,
    /// Output format: `table`, `json`, `folded`, `svg` (flame graph) or `pprof`.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Dimensions to group requests by, comma-separated: the flame graphs' root frames,
    /// outermost first.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = DEFAULT_BY)]
    by: Vec<Dimension>,
    /// What widths mean and rows are sorted by (default: requests in tables and JSON,
    /// cpu in folded stacks, SVG and pprof).
    #[arg(long, value_enum)]
    weight: Option<Weight>,
    /// Keep only matching requests: `DIMENSION=PATTERN[,PATTERN...]` (`*` matches any
    /// run of characters) or `DIMENSION!=...`; repeat for more (all must hold), e.g.
    /// `--filter user_agent=kube-controller-manager/* --filter verb=list,watch`.
    #[arg(long)]
    filter: Vec<String>,
    /// Compare with a baseline and show what grew (red) and shrank (blue), at SOURCE's
    /// widths: a capture file, a daemon (`http://HOST:PORT`, with the same `--window`),
    /// or, when SOURCE is a daemon, how long ago its baseline window ended (`1h`: the
    /// same window an hour earlier). `--format svg` (the default with --diff) or
    /// `folded` (`stack before after` lines).
    #[arg(long, value_name = "BASELINE")]
    diff: Option<String>,
    /// With an https:// daemon: trust the CAs in this PEM file (default: the system's).
    #[arg(long, value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// With an https:// daemon that checks client certificates: present this PEM
    /// certificate, with --client-key.
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// The PEM private key of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// With a daemon that requires a bearer token: send the token in this file (the
    /// daemon's --bearer-token-file).
    #[arg(long, value_name = "FILE")]
    bearer_token_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut filter = Filter::default();
    for f in &args.filter {
        filter.add(f)?;
    }
    if args.window.is_some() && !is_daemon(&args.source) {
        bail!("--window applies to a daemon (http://HOST:PORT) only; a capture file is reported whole");
    }
    let daemons = std::iter::once(&args.source).chain(&args.diff);
    let tls = args.ca_cert.is_some() || args.client_cert.is_some();
    if tls && !daemons.clone().any(|s| s.starts_with("https://")) {
        bail!("--ca-cert, --client-cert and --client-key apply to a daemon served over TLS (https://HOST:PORT) only");
    }
    if args.bearer_token_file.is_some() && !daemons.clone().any(|s| is_daemon(s)) {
        bail!("--bearer-token-file applies to a daemon (http(s)://HOST:PORT) only");
    }
    let format = match (&args.diff, args.format) {
        // A table is the default, which means nothing to a diff: draw it.
        (Some(_), Format::Table) => Format::Svg,
        (Some(_), Format::Json | Format::Pprof) => bail!(
            "--diff draws a flame graph (--format svg) or writes its stacks (--format folded); for pprof, write both profiles with --format pprof and compare them with `go tool pprof -diff_base=BASELINE.pb.gz NOW.pb.gz`"
        ),
        (_, format) => format,
    };
    if args.output.is_none() && !format.for_terminals() && std::io::stdout().is_terminal() {
        bail!(
            "--format {} is not for a terminal: add --output FILE (or redirect standard output)",
            format.name()
        );
    }
    let (body, damage) = match &args.diff {
        None if is_daemon(&args.source) => (from_daemon(&args, format, None)?, None),
        None => from_capture(&args, format, &filter)?,
        Some(baseline) => (diff(&args, format, &filter, baseline)?, None),
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, &body).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("apiprof: wrote {} ({})", path.display(), format.name());
        }
        None => std::io::stdout()
            .write_all(&body)
            .context("writing to standard output")?,
    }
    match damage {
        None => Ok(()),
        Some(error) => Err(anyhow::Error::new(error).context(format!(
            "the capture {} is damaged: the report covers the records before the damage",
            args.source
        ))),
    }
}

fn is_daemon(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The report of a capture file, rendered here, and what stopped the reading early if
/// the file is damaged.
fn from_capture(
    args: &Args,
    format: Format,
    filter: &Filter,
) -> anyhow::Result<(Vec<u8>, Option<CaptureError>)> {
    let (analysis, damage) =
        Analysis::of_capture(&PathBuf::from(&args.source), &args.by, filter.clone())
            .with_context(|| format!("reading the capture {}", args.source))?;
    let options = report::Options {
        format,
        weight: args.weight,
        width: terminal_width(),
        caption: Caption::of(args.source.clone(), filter),
    };
    let body = report::render(
        analysis.report(),
        &analysis.rows,
        &analysis.stacks,
        &options,
    )?;
    Ok((body, damage))
}

/// The width to fit a table to: `COLUMNS` if set, else the terminal's when standard
/// output is one; none when piped.
fn terminal_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    let term = console::Term::stdout();
    term.is_term()
        .then(|| term.size_checked().map(|(_, cols)| cols as usize))
        .flatten()
}

/// A differential flame graph (or its folded stacks) of SOURCE against `baseline`.
fn diff(args: &Args, format: Format, filter: &Filter, baseline: &str) -> anyhow::Result<Vec<u8>> {
    let weight = args.weight.unwrap_or(Weight::Cpu);
    let now = folded_of(args, &args.source, None, filter, weight)?;
    let (before, ago) = if is_daemon(baseline) || std::path::Path::new(baseline).exists() {
        (folded_of(args, baseline, None, filter, weight)?, None)
    } else if is_daemon(&args.source) {
        let ago = humantime::parse_duration(baseline).with_context(|| {
            format!("--diff {baseline:?} is neither a capture file, a daemon (http://HOST:PORT) nor how long ago the baseline window ended (e.g. 1h)")
        })?;
        let before = folded_of(args, &args.source, Some(baseline), filter, weight)?;
        (before, Some(humantime::format_duration(ago).to_string()))
    } else {
        bail!("--diff {baseline:?}: no such capture file (a duration like 1h compares a daemon's window with an earlier one; SOURCE is a capture file)");
    };
    let baseline_name = match ago {
        Some(ago) => format!("the same window {ago} earlier"),
        None => baseline.to_owned(),
    };
    Ok(match format {
        Format::Folded => report::diff_folded(&before, &now).into_bytes(),
        _ => {
            let source = format!("{} against {baseline_name}", args.source);
            let caption = Caption::of(source, filter);
            report::diff_svg(&before, &now, weight, &args.by, &caption)?
        }
    })
}

/// Folded stacks of `source` (a file, or a daemon's window ending `ago` before now).
fn folded_of(
    args: &Args,
    source: &str,
    ago: Option<&str>,
    filter: &Filter,
    weight: Weight,
) -> anyhow::Result<String> {
    let args = Args {
        source: source.to_owned(),
        weight: Some(weight),
        ..args.clone()
    };
    let body = if is_daemon(source) {
        from_daemon(&args, Format::Folded, ago)?
    } else {
        match from_capture(&args, Format::Folded, filter)? {
            (body, None) => body,
            (_, Some(damage)) => {
                return Err(anyhow::Error::new(damage).context(format!(
                    "the capture {source} is damaged; compare whole captures"
                )))
            }
        }
    };
    String::from_utf8(body).context("folded stacks are not UTF-8")
}

/// The daemon's `/report` for the same arguments: exactly what a capture file of the
/// window would give.
fn from_daemon(args: &Args, format: Format, ago: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let mut query = vec![
        ("format", format.name().to_owned()),
        (
            "by",
            args.by
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(","),
        ),
    ];
    query.extend(args.window.iter().map(|w| ("window", w.clone())));
    query.extend(ago.map(|a| ("ago", a.to_owned())));
    query.extend(args.weight.map(|w| ("weight", w.name().to_owned())));
    query.extend(args.filter.iter().map(|f| ("filter", f.clone())));
    query.extend(terminal_width().map(|w| ("width", w.to_string())));
    let url = format!("{}/report", args.source.trim_end_matches('/'));
    let client = client(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let response = client.get(&url).query(&query).send().await.with_context(|| {
            let tls = if url.starts_with("https://") {
                " (over TLS: --ca-cert if its certificate is not signed by a CA of the system, --client-cert and --client-key if it checks client certificates)"
            } else {
                ""
            };
            format!("asking {url}; is `apiprof daemon` listening there{tls}?")
        })?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!(
                "the daemon at {} requires a bearer token: pass the file holding it with --bearer-token-file{}",
                args.source,
                if args.bearer_token_file.is_some() {
                    " (the one given holds another token)"
                } else {
                    ""
                }
            );
        }
        let body = response
            .bytes()
            .await
            .context("reading the daemon's answer")?;
        if !status.is_success() {
            bail!(
                "the daemon refused the report ({status}): {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        Ok(body.to_vec())
    })
}

/// The HTTP client for `args.source`: over TLS, trusting `--ca-cert` (else the
/// system's CAs) and presenting `--client-cert`; with `--bearer-token-file`'s token.
fn client(args: &Args) -> anyhow::Result<reqwest::Client> {
    use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
    let mut builder = reqwest::Client::builder();
    if args.source.starts_with("https://") {
        let identity = args.client_cert.as_deref().zip(args.client_key.as_deref());
        builder =
            builder.use_preconfigured_tls(tls::client_config(args.ca_cert.as_deref(), identity)?);
    }
    if let Some(path) = &args.bearer_token_file {
        let token = read_token(path)?;
        let mut value = HeaderValue::from_bytes(&[&b"Bearer "[..], &token].concat())
            .map_err(|_| {
                anyhow::anyhow!(
                    "the bearer token file {} holds bytes an HTTP header cannot carry (a token is printable ASCII)",
                    path.display()
                )
            })?;
        value.set_sensitive(true);
        builder = builder.default_headers(HeaderMap::from_iter([(AUTHORIZATION, value)]));
    }
    builder.build().context("making the HTTP client")
}

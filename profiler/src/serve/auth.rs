//! The optional bearer token of the daemon's HTTP API: every route but `/healthz`
//! answers 401 without `Authorization: Bearer <token>`. The token is read from a file
//! (a mounted Secret), never from a flag (which `ps` shows), and never logged.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq as _;

use super::{
    state::{lock, Live},
    watched::Watched,
};

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read.
    #[error("reading the bearer token file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds only whitespace.
    #[error("the bearer token file {} is empty; write the token into it (e.g. `head -c 32 /dev/urandom | base64 > FILE`)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The token in `path`, without surrounding whitespace (files often end in a newline).
pub fn read_token(path: &Path) -> Result<Arc<[u8]>, TokenError> {
    let text = std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim_ascii();
    if token.is_empty() {
        return Err(TokenError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(token.into())
}

/// The token requests must carry, reloaded when its file changes.
#[derive(Clone)]
pub struct Bearer {
    token: Arc<Watched<Arc<[u8]>, TokenError>>,
    live: Arc<Mutex<Live>>,
}

impl Bearer {
    /// The token in `path`; refused requests and failed reloads are counted in `live`.
    pub fn from_file(path: &Path, live: Arc<Mutex<Live>>) -> Result<Self, TokenError> {
        let file = path.to_owned();
        let counted = live.clone();
        let token = Watched::new(
            "the bearer token",
            vec![path.to_owned()],
            move || read_token(&file),
            move || lock(&counted).health.listener_error("token_reload"),
        )?;
        Ok(Self {
            token: Arc::new(token),
            live,
        })
    }

    /// Whether an `Authorization` header value carries the token (compared in
    /// constant time).
    fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some((scheme, given)) = authorization.and_then(|a| {
            let space = a.iter().position(|b| *b == b' ')?;
            Some((&a[..space], a[space + 1..].trim_ascii()))
        }) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(b"bearer") && bool::from(given.ct_eq(&self.token.current()))
    }
}

/// Middleware: the request goes on with the token, else 401.
pub async fn require(State(bearer): State<Bearer>, request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if bearer.admits(authorization) {
        return next.run(request).await;
    }
    lock(&bearer.live).health.listener_error("unauthorized");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "this daemon requires `Authorization: Bearer TOKEN`, TOKEN being the contents of its --bearer-token-file\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::window::Settings;

    #[test]
    fn only_the_bearer_scheme_with_the_exact_token_is_admitted() {
        let dir = std::env::temp_dir().join(format!("apiprof-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        let settings = Settings {
            bucket_ns: 1_000_000_000,
            retention_ns: 1_000_000_000,
            top_clients: 1,
        };
        let live = Arc::new(Mutex::new(Live::new(settings, 0)));
        let bearer = Bearer::from_file(&file, live).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for (header, admitted) in [
            (Some(&b"Bearer s3cret-token"[..]), true),
            (Some(b"bearer  s3cret-token"), true),
            (Some(b"Bearer s3cret-toke"), false),
            (Some(b"Bearer s3cret-token2"), false),
            (Some(b"Basic s3cret-token"), false),
            (Some(b"Bearers3cret-token"), false),
            (Some(b"Bearer "), false),
            (None, false),
        ] {
            assert_eq!(bearer.admits(header), admitted, "{header:?}");
        }
    }

    #[test]
    fn an_empty_token_file_is_refused_with_the_fix() {
        let file = std::env::temp_dir().join(format!("apiprof-empty-{}", std::process::id()));
        std::fs::write(&file, " \n").unwrap();
        let error = read_token(&file).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(
            error.contains("is empty; write the token into it"),
            "{error}"
        );
    }
}

//! URL query parsing (`application/x-www-form-urlencoded`), as Go's `url.ParseQuery`.

/// A parsed query: its parameters in order, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (without the `?`).
    pub fn parse(raw: &str) -> Self {
        // `+` is a space; malformed escapes stay as they are and bytes that are not
        // UTF-8 become U+FFFD, so no query fails to parse.
        Self(
            form_urlencoded::parse(raw.as_bytes())
                .map(|(key, value)| (key.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`, if present (possibly empty).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `key` if present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_percent_decoded_in_order() {
        let q = Query::parse("labelSelector=app%3Dweb%2Ctier+in+(a)&limit=500&watch&x=%zz&x=2");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.get("limit"), Some("500"));
        assert_eq!(q.get("watch"), Some(""));
        assert_eq!(q.non_empty("watch"), None);
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("missing"), None);
        assert_eq!(Query::parse("a=%4"), Query(vec![("a".into(), "%4".into())]));
    }

    #[test]
    fn escapes_that_are_not_utf8_decode_lossily() {
        let q = Query::parse("a=%ff%C3%A9&%=%%&b=%e2%82");
        assert_eq!(q.get("a"), Some("\u{fffd}é"));
        assert_eq!(q.get("%"), Some("%%"));
        assert_eq!(q.get("b"), Some("\u{fffd}"));
    }
}

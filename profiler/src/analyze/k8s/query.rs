//! URL query parsing (`application/x-www-form-urlencoded`), as Go's `url.ParseQuery`.

/// A parsed query: its parameters in order, decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses a raw query string (without the `?`) as Go's `url.ParseQuery` does: a
    /// parameter with a `;` or a malformed `%` escape is dropped, and the rest are
    /// decoded (`+` as a space; bytes that are not UTF-8 replaced).
    pub fn parse(raw: &str) -> Self {
        Self(
            raw.split('&')
                .filter(|pair| !pair.contains(';') && escapes_are_well_formed(pair))
                .flat_map(|pair| form_urlencoded::parse(pair.as_bytes()))
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

    /// A boolean parameter as the apiserver reads it (apimachinery's
    /// `Convert_Slice_string_To_bool`): absent is `None`; "0" and "false" in any case
    /// are false; any other value, the empty one included, is true.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.get(key)
            .map(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
    }
}

/// Whether every `%` in `s` starts two hex digits (Go's `QueryUnescape` fails otherwise).
fn escapes_are_well_formed(s: &str) -> bool {
    s.split('%').skip(1).all(|after| {
        after
            .as_bytes()
            .get(..2)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    })
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
        assert_eq!(q.get("missing"), None);
    }

    #[test]
    fn malformed_parameters_are_dropped_as_go_drops_them() {
        let q = Query::parse("x=%zz&x=2&a=%4&b%=1&c;d=3&e=%C3%28&f=%41%2");
        assert_eq!(q.get("x"), Some("2"));
        for dropped in ["a", "b%", "b", "c", "d", "f"] {
            assert_eq!(q.get(dropped), None, "{dropped}");
        }
        assert_eq!(q.get("e"), Some("\u{fffd}("));
    }

    #[test]
    fn flags_are_true_unless_0_or_false() {
        let q = Query::parse("a&b=0&c=FaLsE&d=yes&e=true");
        let flags: Vec<Option<bool>> = ["a", "b", "c", "d", "e", "f"].map(|k| q.flag(k)).into();
        let want = [
            Some(true),
            Some(false),
            Some(false),
            Some(true),
            Some(true),
            None,
        ];
        assert_eq!(flags, want);
    }

    #[test]
    fn escapes_that_are_not_utf8_decode_lossily() {
        let q = Query::parse("a=%ff%C3%A9&%=%%&b=%e2%82");
        assert_eq!(q.get("a"), Some("\u{fffd}é"));
        assert_eq!(q.get("b"), Some("\u{fffd}"));
        // As Go drops it: a malformed escape.
        assert_eq!(q.get("%"), None);
    }
}

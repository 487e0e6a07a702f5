//! Strict parsing of `application/x-www-form-urlencoded` query strings and bodies.
//!
//! actix's `Query`/`Form` extractors silently accept repeated parameters and decode invalid
//! UTF-8 lossily. The identity platform does neither: a repeated parameter is a malformed
//! request, and `state` must come back byte for byte. So the emulator keeps every value as
//! the exact bytes the client sent and leaves it to the caller to ask for UTF-8.

use std::collections::HashSet;

use percent_encoding::percent_decode;

/// Parameters of one request, each name present at most once.
#[derive(Debug, Default, Clone)]
pub struct Params {
    pairs: Vec<(String, Vec<u8>)>,
}

/// Why a query string or form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("the request is larger than {limit} bytes")]
    TooLong { limit: usize },
    #[error("the parameter '{0}' is repeated")]
    Repeated(String),
    #[error("the parameter '{0}' is not valid UTF-8")]
    NotUtf8(String),
}

impl Params {
    /// Parses `raw` (a query string without `?`, or a form body).
    pub fn parse(raw: &[u8], limit: usize) -> Result<Params, ParamError> {
        if raw.len() > limit {
            return Err(ParamError::TooLong { limit });
        }
        let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
        // A set, not a scan of `pairs`: a 64 KiB body holds 20,000 parameters, and comparing
        // each with all before it costs 200 million comparisons.
        let mut names: HashSet<String> = HashSet::new();
        for piece in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match piece.iter().position(|b| *b == b'=') {
                Some(at) => (&piece[..at], &piece[at + 1..]),
                None => (piece, &b""[..]),
            };
            let name = decode(name);
            let name = String::from_utf8(name).map_err(|e| {
                ParamError::NotUtf8(String::from_utf8_lossy(e.as_bytes()).into_owned())
            })?;
            if !names.insert(name.clone()) {
                return Err(ParamError::Repeated(name));
            }
            pairs.push((name, decode(value)));
        }
        Ok(Params { pairs })
    }

    /// Every parameter in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The raw bytes of `name`, if present.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// `name` as text; an empty value counts as absent, as it does at Microsoft.
    pub fn text(&self, name: &str) -> Result<Option<&str>, ParamError> {
        match self.bytes(name) {
            None => Ok(None),
            Some([]) => Ok(None),
            Some(b) => std::str::from_utf8(b)
                .map(Some)
                .map_err(|_| ParamError::NotUtf8(name.to_owned())),
        }
    }
}

/// `+` is a space in form encoding; everything else is percent-decoding to bytes.
fn decode(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    percent_decode(&spaced).collect()
}

/// Percent-encodes bytes for a query string, leaving only RFC 3986 unreserved characters as
/// they are, so that any `state` survives the round trip exactly.
pub fn encode_component(bytes: &[u8]) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::percent_encode(bytes, RESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent_escapes() {
        let p = Params::parse(
            b"scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&a=b+c",
            100,
        )
        .unwrap();
        assert_eq!(
            p.text("scope").unwrap(),
            Some("https://graph.microsoft.com/.default")
        );
        assert_eq!(p.text("a").unwrap(), Some("b c"));
        assert_eq!(p.text("missing").unwrap(), None);
    }

    #[test]
    fn refuses_repeated_names_and_oversized_input() {
        assert_eq!(
            Params::parse(b"client_id=a&client_id=b", 100).unwrap_err(),
            ParamError::Repeated("client_id".into())
        );
        assert_eq!(
            Params::parse(&[b'a'; 11], 10).unwrap_err(),
            ParamError::TooLong { limit: 10 }
        );
    }

    #[test]
    fn many_distinct_parameters_parse_and_a_late_repeat_is_found() {
        let many: Vec<String> = (0..200_000).map(|n| format!("p{n}={n}")).collect();
        let raw = many.join("&");

        let p = Params::parse(raw.as_bytes(), raw.len()).unwrap();
        let repeated = format!("{raw}&p0=again");

        assert_eq!(p.iter().count(), 200_000);
        assert_eq!(p.text("p199999").unwrap(), Some("199999"));
        assert_eq!(
            Params::parse(repeated.as_bytes(), repeated.len()).unwrap_err(),
            ParamError::Repeated("p0".into())
        );
    }

    #[test]
    fn keeps_invalid_utf8_as_bytes_but_refuses_it_as_text() {
        let p = Params::parse(b"state=%FF%00x&empty=", 100).unwrap();
        assert_eq!(p.bytes("state"), Some(&[0xff, 0x00, b'x'][..]));
        assert!(matches!(p.text("state"), Err(ParamError::NotUtf8(_))));
        assert_eq!(p.text("empty").unwrap(), None);
    }

    #[test]
    fn encoding_round_trips_any_bytes() {
        let original: Vec<u8> = (0u8..=255).collect();
        let encoded = encode_component(&original);
        let back = Params::parse(format!("s={encoded}").as_bytes(), 10_000).unwrap();
        assert_eq!(back.bytes("s"), Some(original.as_slice()));
    }
}

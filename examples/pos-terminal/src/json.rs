//! Just enough JSON to read the flat string fields of a verified Alipay response content.
//!
//! The content was verified byte for byte before it gets here, so this only has to find
//! `"key":"value"` pairs at the top level of one object, skipping nested values
//! (`fund_bill_list`) whole. It never panics and never allocates; anything it does not
//! understand is an error, never a guess.

/// Why a field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not a well-formed JSON object (truncated, unbalanced, a stray byte).
    Malformed,
    /// The field is there but its string holds an escape: none of the fields read here may.
    Escaped,
    /// The field is not a string.
    NotAString,
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, want: u8) -> Result<(), JsonError> {
        self.skip_ws();
        match self.bump() {
            Some(b) if b == want => Ok(()),
            _ => Err(JsonError::Malformed),
        }
    }

    /// A string starting at the opening quote: its raw bytes between the quotes, and whether
    /// it held an escape.
    fn string(&mut self) -> Result<(&'a [u8], bool), JsonError> {
        self.expect(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            match self.bump().ok_or(JsonError::Malformed)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.bump().ok_or(JsonError::Malformed)?;
                }
                b if b < 0x20 => return Err(JsonError::Malformed),
                _ => {}
            }
        }
        let raw = self
            .bytes
            .get(start..self.at - 1)
            .ok_or(JsonError::Malformed)?;
        Ok((raw, escaped))
    }

    /// Skips any value: string, number, literal, or a nested object/array (strings inside
    /// may hold brackets).
    fn skip_value(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        match self.peek().ok_or(JsonError::Malformed)? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek().ok_or(JsonError::Malformed)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth = depth.checked_sub(1).ok_or(JsonError::Malformed)?;
                            if depth == 0 {
                                self.at += 1;
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                    self.at += 1;
                }
            }
            _ => {
                let start = self.at;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'0'..=b'9' | b'a'..=b'z' | b'E')
                ) {
                    self.at += 1;
                }
                if self.at == start {
                    Err(JsonError::Malformed)
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// The raw text of the value of `key` at the top level of the JSON object `object`, exactly
/// as it appears, or `None` when the object has no such key. The whole object is checked to
/// be well formed; a repeated key is malformed.
pub fn member<'a>(object: &'a str, key: &str) -> Result<Option<&'a str>, JsonError> {
    let mut s = Scanner {
        bytes: object.as_bytes(),
        at: 0,
    };
    let mut found: Option<&'a str> = None;
    s.expect(b'{')?;
    s.skip_ws();
    if s.peek() == Some(b'}') {
        s.at += 1;
    } else {
        loop {
            s.skip_ws();
            let (name, _) = s.string()?;
            s.expect(b':')?;
            s.skip_ws();
            let start = s.at;
            s.skip_value()?;
            if name == key.as_bytes() {
                if found.is_some() {
                    return Err(JsonError::Malformed);
                }
                found = Some(object.get(start..s.at).ok_or(JsonError::Malformed)?);
            }
            s.skip_ws();
            match s.bump() {
                Some(b',') => continue,
                Some(b'}') => break,
                _ => return Err(JsonError::Malformed),
            }
        }
    }
    s.skip_ws();
    if s.peek().is_some() {
        return Err(JsonError::Malformed);
    }
    Ok(found)
}

/// The string value of `key` at the top level of the JSON object `object` (see [`member`]).
pub fn field<'a>(object: &'a str, key: &str) -> Result<Option<&'a str>, JsonError> {
    let Some(raw) = member(object, key)? else {
        return Ok(None);
    };
    let inner = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or(JsonError::NotAString)?;
    if inner.contains('\\') {
        return Err(JsonError::Escaped);
    }
    Ok(Some(inner))
}

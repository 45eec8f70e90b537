//! PVL, the Parameter Value Language of PDS3 labels: `KEY = value` statements, nested
//! `OBJECT`/`GROUP` blocks, `/* comments */`, quoted strings over several lines, sequences
//! `(a, b)` and sets `{a, b}`, units `<DEG>`, based integers `2#0101#`, pointers `^IMAGE`,
//! namespaced keys `MRO:TDI`, and `END`. CRLF or LF line endings.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    Real(f64),
    /// A double-quoted string, its line breaks and indentation folded to single spaces.
    Text(String),
    /// A single-quoted symbol or an unquoted word (`PLANETOCENTRIC`, dates, file names).
    Symbol(String),
    Sequence(Vec<Value>),
    Set(Vec<Value>),
    /// A number with its unit: `15.0 <DEG>`.
    Measure(Box<Value>, String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(r) => Some(*r),
            Value::Measure(value, _) => value.as_f64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Measure(value, _) => value.as_i64(),
            _ => None,
        }
    }

    /// Text of a string or symbol.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) | Value::Symbol(s) => Some(s),
            _ => None,
        }
    }

    pub fn unit(&self) -> Option<&str> {
        match self {
            Value::Measure(_, unit) => Some(unit),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => write!(f, "\"{s}\""),
            Value::Symbol(s) => f.write_str(s),
            Value::Sequence(items) | Value::Set(items) => {
                let (open, close) = if matches!(self, Value::Set(_)) {
                    ('{', '}')
                } else {
                    ('(', ')')
                };
                write!(f, "{open}")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "{close}")
            }
            Value::Measure(value, unit) => write!(f, "{value} <{unit}>"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Value(Value),
    /// An `OBJECT` or `GROUP` block.
    Block {
        kind: BlockKind,
        label: Label,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    Object,
    Group,
}

/// A label or block: its statements in order (keys may repeat, as `OBJECT = IMAGE` can).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Label {
    pub entries: Vec<(String, Entry)>,
    /// Bytes the label occupied (up to and including the line with `END`), for attached labels.
    pub length: usize,
}

impl Label {
    /// A value by key, or a dotted path through blocks: `IMAGE_MAP_PROJECTION.MAP_SCALE`.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let (block, rest) = match path.split_once('.') {
            Some((block, rest)) => (Some(block), rest),
            None => (None, path),
        };
        match block {
            Some(name) => self.block(name)?.get(rest),
            None => self.entries.iter().find_map(|(k, e)| match e {
                Entry::Value(v) if k.eq_ignore_ascii_case(rest) => Some(v),
                _ => None,
            }),
        }
    }

    /// The first `OBJECT`/`GROUP` named `name`, searched depth-first.
    pub fn block(&self, name: &str) -> Option<&Label> {
        for (key, entry) in &self.entries {
            if let Entry::Block { label, .. } = entry {
                if key.eq_ignore_ascii_case(name) {
                    return Some(label);
                }
                if let Some(found) = label.block(name) {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Pointers: `^IMAGE` and the like, by the name after the caret.
    pub fn pointer(&self, name: &str) -> Option<&Value> {
        self.get(&format!("^{name}"))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("label line {line}: {message}")]
pub struct PvlError {
    pub line: usize,
    pub message: String,
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn error<T>(&self, message: impl Into<String>) -> Result<T, PvlError> {
        Err(PvlError {
            line: self.line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        if byte == b'\n' {
            self.line += 1;
        }
        Some(byte)
    }

    /// Skips blanks, line breaks and comments.
    fn skip(&mut self) -> Result<(), PvlError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r' | b'\n' | 0x0c) => {
                    self.bump();
                }
                Some(b'/') if self.text.get(self.pos + 1) == Some(&b'*') => {
                    let start = self.line;
                    self.pos += 2;
                    loop {
                        match self.bump() {
                            Some(b'*') if self.peek() == Some(b'/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                            None => {
                                return Err(PvlError {
                                    line: start,
                                    message: "comment never closed".into(),
                                })
                            }
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace()
                || b"=,(){}<>\"'".contains(&b)
                || (b == b'/' && self.text.get(self.pos + 1) == Some(&b'*'))
            {
                break;
            }
            self.bump();
        }
        String::from_utf8_lossy(&self.text[start..self.pos]).into_owned()
    }

    fn statements(&mut self, closing: Option<(BlockKind, &str)>) -> Result<Label, PvlError> {
        let mut label = Label::default();
        loop {
            self.skip()?;
            if self.peek().is_none() {
                return match closing {
                    None => Ok(label),
                    Some((_, name)) => {
                        self.error(format!("{name} is never closed (no END_OBJECT/END_GROUP)"))
                    }
                };
            }
            let key_line = self.line;
            let key = self.word();
            if key.is_empty() {
                return self.error(format!(
                    "expected a keyword, found {:?}",
                    self.peek().map(char::from).unwrap_or(' ')
                ));
            }
            let upper = key.to_ascii_uppercase();
            if upper == "END" && closing.is_none() {
                // The rest of the line belongs to the label.
                while let Some(b) = self.bump() {
                    if b == b'\n' {
                        break;
                    }
                }
                label.length = self.pos;
                return Ok(label);
            }
            if upper == "END_OBJECT" || upper == "END_GROUP" {
                let kind = if upper == "END_OBJECT" {
                    BlockKind::Object
                } else {
                    BlockKind::Group
                };
                let name = self.optional_name()?;
                return match closing {
                    Some((open_kind, open_name)) if open_kind == kind => {
                        if let Some(name) = name.filter(|n| !n.eq_ignore_ascii_case(open_name)) {
                            return Err(PvlError {
                                line: key_line,
                                message: format!("{upper} = {name} closes {open_name}"),
                            });
                        }
                        Ok(label)
                    }
                    _ => Err(PvlError {
                        line: key_line,
                        message: format!("{upper} without a matching opening"),
                    }),
                };
            }
            self.skip()?;
            if self.bump() != Some(b'=') {
                return Err(PvlError {
                    line: key_line,
                    message: format!("expected '=' after {key}"),
                });
            }
            self.skip()?;
            if upper == "OBJECT" || upper == "GROUP" {
                let kind = if upper == "OBJECT" {
                    BlockKind::Object
                } else {
                    BlockKind::Group
                };
                let name = self.word();
                if name.is_empty() {
                    return Err(PvlError {
                        line: key_line,
                        message: format!("{upper} without a name"),
                    });
                }
                let inner = self.statements(Some((kind, &name)))?;
                label
                    .entries
                    .push((name, Entry::Block { kind, label: inner }));
            } else {
                let value = self.value()?;
                label.entries.push((key, Entry::Value(value)));
            }
        }
    }

    fn optional_name(&mut self) -> Result<Option<String>, PvlError> {
        let save = (self.pos, self.line);
        // `END_OBJECT = NAME` on the same line; a bare `END_OBJECT` is also valid.
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        if self.peek() == Some(b'=') {
            self.bump();
            self.skip()?;
            return Ok(Some(self.word()));
        }
        (self.pos, self.line) = save;
        Ok(None)
    }

    fn value(&mut self) -> Result<Value, PvlError> {
        self.skip()?;
        let value = match self.peek() {
            Some(b'"') => {
                self.bump();
                let start_line = self.line;
                let start = self.pos;
                while self.peek().is_some_and(|b| b != b'"') {
                    self.bump();
                }
                if self.bump().is_none() {
                    return Err(PvlError {
                        line: start_line,
                        message: "string never closed".into(),
                    });
                }
                let raw = String::from_utf8_lossy(&self.text[start..self.pos - 1]);
                Value::Text(raw.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            Some(b'\'') => {
                self.bump();
                let start = self.pos;
                while self.peek().is_some_and(|b| b != b'\'' && b != b'\n') {
                    self.bump();
                }
                if self.peek() != Some(b'\'') {
                    return self.error("symbol never closed");
                }
                self.bump();
                Value::Symbol(String::from_utf8_lossy(&self.text[start..self.pos - 1]).into_owned())
            }
            Some(open @ (b'(' | b'{')) => {
                self.bump();
                let close = if open == b'(' { b')' } else { b'}' };
                let mut items = Vec::new();
                loop {
                    self.skip()?;
                    if self.peek() == Some(close) {
                        self.bump();
                        break;
                    }
                    items.push(self.value()?);
                    self.skip()?;
                    match self.bump() {
                        Some(b',') => {}
                        Some(c) if c == close => break,
                        other => {
                            return self.error(format!(
                                "expected ',' or '{}' in a list, found {}",
                                char::from(close),
                                other.map_or("the end of the label".into(), |c| format!(
                                    "{:?}",
                                    char::from(c)
                                ))
                            ))
                        }
                    }
                }
                if open == b'(' {
                    Value::Sequence(items)
                } else {
                    Value::Set(items)
                }
            }
            None => return self.error("value missing at the end of the label"),
            _ => {
                let word = self.word();
                if word.is_empty() {
                    return self.error(format!(
                        "expected a value, found {:?}",
                        char::from(self.peek().unwrap_or(b' '))
                    ));
                }
                scalar(&word)
            }
        };
        // A unit may follow a number: `15.0 <DEG>`.
        let save = (self.pos, self.line);
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
        if self.peek() == Some(b'<') {
            self.bump();
            let start = self.pos;
            while self.peek().is_some_and(|b| b != b'>' && b != b'\n') {
                self.bump();
            }
            if self.peek() != Some(b'>') {
                return self.error("unit never closed with '>'");
            }
            self.bump();
            let unit = String::from_utf8_lossy(&self.text[start..self.pos - 1])
                .trim()
                .to_string();
            return Ok(Value::Measure(Box::new(value), unit));
        }
        (self.pos, self.line) = save;
        Ok(value)
    }
}

/// An unquoted word: integer, real, based integer (`2#0101#`), or a symbol (which covers
/// dates and times too: they keep their text).
fn scalar(word: &str) -> Value {
    if let Ok(i) = word.parse::<i64>() {
        return Value::Integer(i);
    }
    let numeric = word
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    if numeric && word.bytes().any(|b| b.is_ascii_digit()) {
        if let Ok(r) = word.parse::<f64>() {
            return Value::Real(r);
        }
    }
    if let Some((radix, digits)) = word
        .split_once('#')
        .and_then(|(r, rest)| Some((r.parse::<u32>().ok()?, rest.strip_suffix('#')?)))
    {
        if let Some(value) = (2..=16)
            .contains(&radix)
            .then(|| i64::from_str_radix(digits, radix).ok())
            .flatten()
        {
            return Value::Integer(value);
        }
    }
    Value::Symbol(word.to_string())
}

/// Parses a label: a detached `.LBL`, or the head of a file with an attached label (parsing
/// stops at `END`; [`Label::length`] says where the data may start).
pub fn parse(bytes: &[u8]) -> Result<Label, PvlError> {
    let mut parser = Parser {
        text: bytes,
        pos: 0,
        line: 1,
    };
    parser.statements(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL: &str = "PDS_VERSION_ID = PDS3\r\n\
/* a comment */\r\n\
RECORD_BYTES = 40\r\n\
^IMAGE = (\"X.IMG\", 3 <BYTES>)\r\n\
NAME = \"A LONG\r\n      NAME\"\r\n\
LIST = (ON, 'x y', 2, -3.5e2,\r\n   4)\r\n\
SET = {A, B}\r\n\
MASK = 2#0000001111111111#\r\n\
MRO:TDI = 64\r\n\
WHEN = 2009-07-18T13:54:41.340\r\n\
OBJECT = IMAGE\r\n\
  LINES = 2\r\n\
  SCALE = 0.5 <METERS/PIXEL>\r\n\
  GROUP = INNER\r\n\
    DEPTH = 3\r\n\
  END_GROUP = INNER\r\n\
END_OBJECT = IMAGE\r\n\
END\r\n";

    #[test]
    fn every_construct_parses() {
        let label = parse(LABEL.as_bytes()).unwrap();
        assert_eq!(
            label.get("PDS_VERSION_ID"),
            Some(&Value::Symbol("PDS3".into()))
        );
        assert_eq!(label.get("RECORD_BYTES"), Some(&Value::Integer(40)));
        assert_eq!(
            label.pointer("IMAGE"),
            Some(&Value::Sequence(vec![
                Value::Text("X.IMG".into()),
                Value::Measure(Box::new(Value::Integer(3)), "BYTES".into())
            ]))
        );
        assert_eq!(label.get("NAME"), Some(&Value::Text("A LONG NAME".into())));
        assert_eq!(
            label.get("LIST"),
            Some(&Value::Sequence(vec![
                Value::Symbol("ON".into()),
                Value::Symbol("x y".into()),
                Value::Integer(2),
                Value::Real(-350.0),
                Value::Integer(4)
            ]))
        );
        assert_eq!(
            label.get("SET"),
            Some(&Value::Set(vec![
                Value::Symbol("A".into()),
                Value::Symbol("B".into())
            ]))
        );
        assert_eq!(label.get("MASK"), Some(&Value::Integer(1023)));
        assert_eq!(label.get("MRO:TDI"), Some(&Value::Integer(64)));
        assert_eq!(
            label.get("WHEN").and_then(Value::as_str),
            Some("2009-07-18T13:54:41.340")
        );
        assert_eq!(label.get("IMAGE.LINES"), Some(&Value::Integer(2)));
        let scale = label.get("IMAGE.SCALE").unwrap();
        assert_eq!(
            (scale.as_f64(), scale.unit()),
            (Some(0.5), Some("METERS/PIXEL"))
        );
        assert_eq!(label.get("INNER.DEPTH"), Some(&Value::Integer(3)));
        assert_eq!(label.length, LABEL.len());
    }

    #[test]
    fn malformed_labels_name_the_line() {
        let error = |text: &str| parse(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(error("A = 1\nB 2\n"), "label line 2: expected '=' after B");
        assert_eq!(
            error("A = 1\nOBJECT = X\n  B = 2\n"),
            "label line 4: X is never closed (no END_OBJECT/END_GROUP)"
        );
        assert_eq!(
            error("A = \"open\nB = 2\n"),
            "label line 1: string never closed"
        );
        assert_eq!(
            error("A = (1, 2\nB = 3\n"),
            "label line 2: expected ',' or ')' in a list, found 'B'"
        );
        assert_eq!(
            error("OBJECT = X\nEND_OBJECT = Y\n"),
            "label line 2: END_OBJECT = Y closes X"
        );
        assert_eq!(
            error("END_GROUP = G\n"),
            "label line 1: END_GROUP without a matching opening"
        );
        assert_eq!(
            error("A = 1 <DEG\n"),
            "label line 1: unit never closed with '>'"
        );
        assert_eq!(
            error("/* open\nA = 1\n"),
            "label line 1: comment never closed"
        );
    }
}

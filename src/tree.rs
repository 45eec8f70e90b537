//! A small format-neutral document tree that JSON and XML are both read into, so one walker
//! can turn either into typed records with the same rules and the same error messages.

use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlError {
    #[error("malformed XML at byte {offset}: {message}")]
    Malformed { offset: u64, message: String },
    #[error("an XML document with no elements")]
    NoElements,
}

/// A document read into a format-neutral tree. XML repeats an element where JSON has an
/// array, and neither says whether one item was meant as a list; [`Node::items`] hides the
/// difference.
#[derive(Debug, Clone, PartialEq)]
///
/// Text borrows from the input wherever it needs no unescaping, so parsing allocates little
/// beyond the records made from the tree.
pub enum Node<'a> {
    Text(Cow<'a, str>),
    /// A JSON number, as written: kept apart from text so that readers of formats that
    /// define a field as a number can refuse `"500"` (ODE, which quotes every value, reads
    /// both through [`Node::scalar`]).
    Number(Cow<'a, str>),
    Map(Vec<(Cow<'a, str>, Node<'a>)>),
    List(Vec<Node<'a>>),
}

impl<'a> Node<'a> {
    fn is_null(&self) -> bool {
        matches!(self, Node::Text(t) if t == NULL)
    }

    /// The text of a string or a number.
    pub fn scalar(&self) -> Option<&str> {
        match self {
            Node::Text(text) | Node::Number(text) => Some(text),
            Node::Map(_) | Node::List(_) => None,
        }
    }

    /// "a string", "a number", "an object" or "a list", for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Node::Text(_) => "a string",
            Node::Number(_) => "a number",
            Node::Map(_) => "an object",
            Node::List(_) => "a list",
        }
    }

    pub fn entries(&self) -> &[(Cow<'a, str>, Node<'a>)] {
        match self {
            Node::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The first child called `key`.
    pub fn get(&self, key: &str) -> Option<&Node<'a>> {
        self.entries()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Every child called `key`, lists flattened: one object, a JSON array and repeated XML
    /// elements all read the same.
    pub fn items<'s>(&'s self, key: &str) -> Vec<&'s Node<'a>> {
        let mut out = Vec::new();
        for (_, node) in self.entries().iter().filter(|(k, _)| k == key) {
            match node {
                Node::List(items) => out.extend(items),
                other => out.push(other),
            }
        }
        out
    }

    /// Text for people: strings as they are, anything nested as compact JSON.
    pub fn to_text(&self) -> String {
        match self {
            Node::Text(text) | Node::Number(text) => text.to_string(),
            other => other.to_json().to_string(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            Node::Text(text) => serde_json::Value::String(text.to_string()),
            Node::Number(text) => text
                .parse::<serde_json::Number>()
                .map_or_else(|_| serde_json::Value::String(text.to_string()), Into::into),
            Node::List(items) => items.iter().map(Node::to_json).collect(),
            Node::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

/// JSON is read straight into a [`Node`] (no intermediate `serde_json::Value`): numbers keep
/// their digits as [`Node::Number`], booleans become text, and nulls are dropped like absent
/// keys.
impl<'de> serde::Deserialize<'de> for Node<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

/// A JSON null becomes this marker so maps and lists can drop it.
const NULL: &str = "\u{0}null";

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Owned(v)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Borrowed(if v { "True" } else { "False" })))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node<'de>, E> {
        Ok(Node::Number(Cow::Owned(v.to_string())))
    }

    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Text(Cow::Borrowed(NULL)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Node<'de>>()? {
            if !item.is_null() {
                items.push(item);
            }
        }
        Ok(Node::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some((Key(key), value)) = map.next_entry::<Key<'de>, Node<'de>>()? {
            if !value.is_null() {
                entries.push((key, value));
            }
        }
        Ok(Node::Map(entries))
    }
}

/// An object key, borrowed from the input when it has no escapes (serde's own `Cow`
/// deserialisation always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Reads an XML document into its root element's name and a [`Node`] tree: an element with
/// child elements becomes a map (repeated names kept in order), an element with only text
/// becomes text. Attributes are not kept.
pub fn from_xml(text: &str) -> Result<(String, Node<'static>), XmlError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let xml_error = |reader: &quick_xml::Reader<&[u8]>, message: String| XmlError::Malformed {
        offset: reader.error_position().max(reader.buffer_position()),
        message,
    };
    // Open elements: (name, children, text).
    type Children = Vec<(Cow<'static, str>, Node<'static>)>;
    let mut stack: Vec<(String, Children, String)> = Vec::new();
    let mut root: Option<(String, Node<'static>)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| xml_error(&reader, e.to_string()))?;
        match event {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                stack.push((name, Vec::new(), String::new()));
            }
            Event::Empty(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                match stack.last_mut() {
                    Some((_, children, _)) => children.push((name.into(), Node::Text("".into()))),
                    None => root = Some((name, Node::Text("".into()))),
                }
            }
            Event::Text(content) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    let decoded = content
                        .xml_content()
                        .map_err(|e| xml_error(&reader, e.to_string()))?;
                    text.push_str(&decoded);
                }
            }
            Event::CData(content) => {
                if let Some((_, _, text)) = stack.last_mut() {
                    text.push_str(&String::from_utf8_lossy(&content));
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| xml_error(&reader, e.to_string()))?
                {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference
                            .decode()
                            .map_err(|e| xml_error(&reader, e.to_string()))?;
                        quick_xml::escape::resolve_xml_entity(&name)
                            .ok_or_else(|| xml_error(&reader, format!("unknown entity &{name};")))?
                            .to_string()
                    }
                };
                if let Some((_, _, text)) = stack.last_mut() {
                    text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                let (name, children, text) = stack.pop().ok_or_else(|| {
                    xml_error(&reader, "closing tag without an opening one".into())
                })?;
                let node = if children.is_empty() {
                    Node::Text(text.trim().to_string().into())
                } else {
                    Node::Map(children)
                };
                match stack.last_mut() {
                    Some((_, siblings, _)) => siblings.push((name.into(), node)),
                    None => root = Some((name, node)),
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if let Some((name, _, _)) = stack.last() {
        return Err(xml_error(&reader, format!("document ends inside <{name}>")));
    }
    root.ok_or(XmlError::NoElements)
}

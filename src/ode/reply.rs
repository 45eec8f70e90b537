//! Parsing ODE product-query replies, as the REST API sends them or as saved to disk.
//!
//! The service writes every value as a string, gives `Products.Product` as an object for one
//! result and an array for several, and reports errors as HTTP 200 with `Status: "ERROR"`.
//! JSON and XML replies are read into one small tree ([`Node`]) and a single walker turns that
//! into typed records, so both formats obey exactly the same rules.

use crate::geo::{BoxError, LonLatBox};
use crate::product::{check_plain_name, Product, ProductEntry, ProductFile, UnsafeName, UtcTime};
use crate::tree::Node;
use std::collections::BTreeMap;

/// A parsed reply: the products plus what the server said about the query.
#[derive(Debug, Clone, PartialEq)]
pub struct OdeReply {
    /// `Count`, present when the query asked for it (`results=c`): the total across all pages.
    pub count: Option<u64>,
    /// `QuerySummary.Date`: when ODE answered.
    pub retrieved_at: Option<UtcTime>,
    pub query_summary: BTreeMap<String, String>,
    pub products: Vec<ProductEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("the reply is empty")]
    Empty,
    #[error("not UTF-8 text (bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("not an ODE reply: expected a JSON object or an XML document, found {found}")]
    NotAReply { found: String },
    #[error(
        "this is a bare list of {items} item(s), not an ODE reply (it looks like a \
         Product_file array cut out of one); import the whole reply, which has ODEResults"
    )]
    BareList { items: usize },
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("malformed XML at byte {offset}: {message}")]
    Xml { offset: u64, message: String },
    #[error("no ODEResults element: this is {found}, not an ODE reply")]
    NoResults { found: String },
    #[error("the ODE server answered with an error: {message}")]
    Server { message: String },
    #[error("ODEResults.{field}: {problem}")]
    Envelope {
        field: &'static str,
        problem: String,
    },
    #[error("Product_file #{index}: {problem}")]
    File { index: usize, problem: FieldError },
    #[error("product #{index}{}: {problem}", pdsid.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Product {
        /// 1-based position in the reply.
        index: usize,
        pdsid: Option<String>,
        problem: FieldError,
    },
}

/// What was wrong with one field of a product or file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldError {
    #[error("required field {0} is missing")]
    Missing(&'static str),
    #[error("field {field}: expected {expected}, found {found}")]
    Shape {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("field {field}: expected {expected}, found {value:?}")]
    Value {
        field: String,
        expected: &'static str,
        value: String,
    },
    #[error("bounding box: {0}")]
    Box(#[from] BoxError),
    #[error(transparent)]
    Name(#[from] UnsafeName),
    #[error("file #{index}: {problem}")]
    File {
        index: usize,
        problem: Box<FieldError>,
    },
}

/// Parses one reply, JSON or XML, detected from its first character.
pub fn parse_reply(bytes: &[u8]) -> Result<OdeReply, ReplyError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ReplyError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    let text = text.trim_start_matches('\u{feff}').trim_start();
    let root = match text.chars().next() {
        None => return Err(ReplyError::Empty),
        Some('{') | Some('[') => json_root(text)?,
        Some('<') => xml_root(text)?,
        Some(other) => {
            return Err(ReplyError::NotAReply {
                found: format!("{other:?} at the start"),
            })
        }
    };
    reply_from_tree(&root)
}

fn json_error(e: serde_json::Error) -> ReplyError {
    ReplyError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    }
}

fn json_root(text: &str) -> Result<Node<'_>, ReplyError> {
    match serde_json::from_str::<Node>(text).map_err(json_error)? {
        Node::List(items) => Err(ReplyError::BareList { items: items.len() }),
        Node::Map(entries) => {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_ref()).collect();
            let found = describe_keys(&keys);
            entries
                .into_iter()
                .find(|(k, _)| k == "ODEResults")
                .map(|(_, results)| results)
                .ok_or(ReplyError::NoResults { found })
        }
        Node::Text(_) | Node::Number(_) => Err(ReplyError::NotAReply {
            found: "a bare JSON value".into(),
        }),
    }
}

fn describe_keys(keys: &[&str]) -> String {
    if keys.is_empty() {
        "an empty object".into()
    } else {
        format!(
            "an object with keys {}",
            keys[..keys.len().min(5)].join(", ")
        )
    }
}

/// The reply's root element must be `ODEResults`.
fn xml_root(text: &str) -> Result<Node<'static>, ReplyError> {
    match crate::tree::from_xml(text) {
        Ok((name, node)) if name == "ODEResults" => Ok(node),
        Ok((name, _)) => Err(ReplyError::NoResults {
            found: format!("an XML document whose root is <{name}>"),
        }),
        Err(crate::tree::XmlError::NoElements) => Err(ReplyError::NotAReply {
            found: "an XML document with no elements".into(),
        }),
        Err(crate::tree::XmlError::Malformed { offset, message }) => {
            Err(ReplyError::Xml { offset, message })
        }
    }
}

fn reply_from_tree(results: &Node) -> Result<OdeReply, ReplyError> {
    if !matches!(results, Node::Map(_)) {
        return Err(ReplyError::Envelope {
            field: "ODEResults",
            problem: format!("expected an object, found {}", results.describe()),
        });
    }
    let text_of = |field: &'static str| -> Result<Option<&str>, ReplyError> {
        match results.get(field) {
            None => Ok(None),
            Some(node @ (Node::Text(_) | Node::Number(_))) => Ok(node.scalar()),
            Some(other) => Err(ReplyError::Envelope {
                field,
                problem: format!("expected a string, found {}", other.describe()),
            }),
        }
    };
    let status = text_of("Status")?;
    if let Some(status) = status.filter(|s| !s.eq_ignore_ascii_case("success")) {
        let message = text_of("Error")?
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("Status {status:?} without a message"));
        return Err(ReplyError::Server { message });
    }
    let count = text_of("Count")?
        .map(|c| {
            c.trim().parse::<u64>().map_err(|_| ReplyError::Envelope {
                field: "Count",
                problem: format!("expected a whole number, found {c:?}"),
            })
        })
        .transpose()?;
    let query_summary: BTreeMap<String, String> = results
        .get("QuerySummary")
        .map(|summary| {
            summary
                .entries()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_text()))
                .collect()
        })
        .unwrap_or_default();
    let retrieved_at = match query_summary.get("Date") {
        Some(date) => Some(UtcTime::parse(date).ok_or_else(|| ReplyError::Envelope {
            field: "QuerySummary.Date",
            problem: format!("expected a time like 2020-09-14T08:26:21.003, found {date:?}"),
        })?),
        None => None,
    };
    let product_nodes = match results.get("Products") {
        None | Some(Node::Text(_) | Node::Number(_)) => Vec::new(),
        Some(products @ Node::Map(_)) => products.items("Product"),
        Some(other) => {
            return Err(ReplyError::Envelope {
                field: "Products",
                problem: format!("expected an object, found {}", other.describe()),
            })
        }
    };
    let products = product_nodes
        .into_iter()
        .enumerate()
        .map(|(i, node)| {
            entry_from_node(node, retrieved_at).map_err(|problem| ReplyError::Product {
                index: i + 1,
                pdsid: node.get("pdsid").and_then(Node::scalar).map(String::from),
                problem,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OdeReply {
        count,
        retrieved_at,
        query_summary,
        products,
    })
}

fn text<'a>(field: &str, node: &'a Node<'_>) -> Result<&'a str, FieldError> {
    match node {
        Node::Text(text) | Node::Number(text) => Ok(text.trim()),
        other => Err(FieldError::Shape {
            field: field.to_string(),
            expected: "a string",
            found: other.describe(),
        }),
    }
}

/// Optional text: ODE writes empty strings for absent values.
fn opt_text(field: &str, node: &Node) -> Result<Option<String>, FieldError> {
    let value = text(field, node)?;
    Ok((!value.is_empty()).then(|| value.to_string()))
}

fn parsed<T>(
    field: &str,
    node: &Node,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, FieldError> {
    let value = text(field, node)?;
    if value.is_empty() {
        return Ok(None);
    }
    parse(value).map(Some).ok_or_else(|| FieldError::Value {
        field: field.to_string(),
        expected,
        value: value.to_string(),
    })
}

fn number(field: &str, node: &Node) -> Result<Option<f64>, FieldError> {
    parsed(field, node, "a number", |v| {
        v.parse::<f64>().ok().filter(|n| n.is_finite())
    })
}

fn whole(field: &str, node: &Node) -> Result<Option<u64>, FieldError> {
    parsed(field, node, "a whole number", |v| v.parse::<u64>().ok())
}

fn flag(field: &str, node: &Node) -> Result<Option<bool>, FieldError> {
    parsed(field, node, "True or False", |v| {
        if v.eq_ignore_ascii_case("true") {
            Some(true)
        } else if v.eq_ignore_ascii_case("false") {
            Some(false)
        } else {
            None
        }
    })
}

fn time(field: &str, node: &Node) -> Result<Option<UtcTime>, FieldError> {
    parsed(
        field,
        node,
        "a time like 2010-01-27T17:48:41.108",
        UtcTime::parse,
    )
}

fn latitude(field: &str, node: &Node) -> Result<Option<f64>, FieldError> {
    match number(field, node)? {
        Some(lat) if !(-90.0..=90.0).contains(&lat) => Err(FieldError::Value {
            field: field.to_string(),
            expected: "a latitude in -90..=90",
            value: lat.to_string(),
        }),
        other => Ok(other),
    }
}

fn longitude(field: &str, node: &Node) -> Result<Option<f64>, FieldError> {
    match number(field, node)? {
        Some(lon) => crate::geo::normalise_longitude("longitude", lon)
            .map(Some)
            .map_err(|_| FieldError::Value {
                field: field.to_string(),
                expected: "a longitude in 0..=360 east",
                value: lon.to_string(),
            }),
        None => Ok(None),
    }
}

/// Footprints that ODE leaves empty come as `MULTIPOLYGON EMPTY`.
fn geometry(field: &str, node: &Node) -> Result<Option<String>, FieldError> {
    Ok(opt_text(field, node)?.filter(|wkt| !wkt.ends_with("EMPTY")))
}

fn entry_from_node(node: &Node, retrieved_at: Option<UtcTime>) -> Result<ProductEntry, FieldError> {
    Ok(ProductEntry {
        product: product_from_node(node, retrieved_at)?,
        files: files_from_product(node)?,
    })
}

fn product_from_node(node: &Node, retrieved_at: Option<UtcTime>) -> Result<Product, FieldError> {
    let Node::Map(entries) = node else {
        return Err(FieldError::Shape {
            field: "Product".into(),
            expected: "an object",
            found: node.describe(),
        });
    };
    let mut p = Product {
        retrieved_at,
        ..Product::new("", "", "", "")
    };
    let (mut west, mut east, mut south, mut north) = (None, None, None, None);
    for (key, value) in entries {
        let k = key.as_ref();
        match k {
            "pdsid" => p.pdsid = text(k, value)?.to_ascii_uppercase(),
            "ihid" => p.instrument_host = text(k, value)?.to_ascii_uppercase(),
            "iid" => p.instrument = text(k, value)?.to_ascii_uppercase(),
            "pt" => p.product_type = text(k, value)?.to_ascii_uppercase(),
            "Target_name" => p.target = opt_text(k, value)?,
            "Data_Set_Id" => p.data_set_id = opt_text(k, value)?,
            "Observation_id" => p.observation_id = opt_text(k, value)?,
            "PDSVolume_Id" => p.volume_id = opt_text(k, value)?,
            "Producer_id" => p.producer_id = opt_text(k, value)?,
            "Product_version_id" => p.product_version = opt_text(k, value)?,
            "RelativePathtoVol" => p.relative_path = opt_text(k, value)?,
            "Comment" => p.comment = opt_text(k, value)?,
            "Description" => p.description = opt_text(k, value)?,
            "Center_latitude" => p.center_latitude = latitude(k, value)?,
            "Center_longitude" => p.center_longitude = longitude(k, value)?,
            "Westernmost_longitude" => west = longitude(k, value)?,
            "Easternmost_longitude" => east = longitude(k, value)?,
            "Minimum_latitude" => south = latitude(k, value)?,
            "Maximum_latitude" => north = latitude(k, value)?,
            "Footprint_geometry" => p.footprints.geometry = geometry(k, value)?,
            "Footprint_C0_geometry" => p.footprints.c0 = geometry(k, value)?,
            "Footprint_GL_geometry" => p.footprints.gl = geometry(k, value)?,
            "Footprint_NP_geometry" => p.footprints.np = geometry(k, value)?,
            "Footprint_SP_geometry" => p.footprints.sp = geometry(k, value)?,
            // ODE spells it this way.
            "Footprint_souce" | "Footprint_source" => p.footprints.source = opt_text(k, value)?,
            "Footprints_cross_meridian" => p.footprints.crosses_meridian = flag(k, value)?,
            "BB_georeferenced" => p.bb_georeferenced = flag(k, value)?,
            "Center_georeferenced" => p.center_georeferenced = flag(k, value)?,
            "Pole_state" => p.pole_state = opt_text(k, value)?,
            "Map_scale" => p.map_scale = number(k, value)?,
            "Map_resolution" => p.map_resolution = number(k, value)?,
            "Incidence_angle" => p.incidence_angle = number(k, value)?,
            "Emission_angle" => p.emission_angle = number(k, value)?,
            "Phase_angle" => p.phase_angle = number(k, value)?,
            "Solar_longitude" => p.solar_longitude = number(k, value)?,
            "Solar_time" => p.solar_time = number(k, value)?,
            "Observation_time" => p.observation_time = time(k, value)?,
            "UTC_start_time" => p.start_time = time(k, value)?,
            "UTC_stop_time" => p.stop_time = time(k, value)?,
            "Product_creation_time" => p.creation_time = time(k, value)?,
            "SpaceCraft_clock_start_count" => p.spacecraft_clock_start = opt_text(k, value)?,
            "SpaceCraft_clock_stop_count" => p.spacecraft_clock_stop = opt_text(k, value)?,
            "Start_orbit_number" => p.start_orbit = orbit(k, value)?,
            "Stop_orbit_number" => p.stop_orbit = orbit(k, value)?,
            "LabelFileName" => p.label_file_name = opt_text(k, value)?,
            "LabelURL" => p.label_url = opt_text(k, value)?,
            "ProductURL" => p.product_url = opt_text(k, value)?,
            "FilesURL" => p.files_url = opt_text(k, value)?,
            "External_url" => p.external_url = opt_text(k, value)?,
            "External_url2" => p.external_url2 = opt_text(k, value)?,
            "ODE_notes" => {
                p.ode_notes = value
                    .items("ODE_note")
                    .into_iter()
                    .map(|n| text("ODE_notes.ODE_note", n).map(str::to_string))
                    .collect::<Result<_, _>>()?
            }
            // Files are read by `files_from_product`; keeping them out of `extra`.
            "Product_files" => {}
            _ => {
                p.extra.insert(key.to_string(), value.to_text());
            }
        }
    }
    for (name, value) in [
        ("pdsid", &p.pdsid),
        ("ihid", &p.instrument_host),
        ("iid", &p.instrument),
        ("pt", &p.product_type),
    ] {
        if value.is_empty() {
            return Err(FieldError::Missing(name));
        }
    }
    check_plain_name("pdsid", &p.pdsid)?;
    p.bbox = match (west, east, south, north) {
        (Some(w), Some(e), Some(s), Some(n)) => Some(LonLatBox::new(w, e, s, n)?),
        _ => None,
    };
    Ok(p)
}

fn orbit(field: &str, node: &Node) -> Result<Option<u32>, FieldError> {
    parsed(field, node, "an orbit number", |v| v.parse::<u32>().ok())
}

/// The files listed under one product node, or `None` when the reply carried no file list
/// (a query without `results=f`), which is not the same as an empty list.
fn files_from_product(node: &Node) -> Result<Option<Vec<ProductFile>>, FieldError> {
    let Some(files) = node.get("Product_files") else {
        return Ok(None);
    };
    if let Node::Text(_) | Node::Number(_) = files {
        return Ok(Some(Vec::new()));
    }
    files
        .items("Product_file")
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            file_from_node(file).map_err(|problem| FieldError::File {
                index: i + 1,
                problem: Box::new(problem),
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// Parses one `Product_file` entry.
fn file_from_node(node: &Node) -> Result<ProductFile, FieldError> {
    let Node::Map(entries) = node else {
        return Err(FieldError::Shape {
            field: "Product_file".into(),
            expected: "an object",
            found: node.describe(),
        });
    };
    let (mut name, mut url, mut file_type) = (None, None, None);
    let (mut description, mut kbytes, mut created) = (None, None, None);
    for (key, value) in entries {
        let k = key.as_ref();
        match k {
            "FileName" => name = opt_text(k, value)?,
            "URL" => url = opt_text(k, value)?,
            "Type" => file_type = opt_text(k, value)?,
            "Description" => description = opt_text(k, value)?,
            "KBytes" => kbytes = whole(k, value)?,
            "Creation_date" => created = time(k, value)?,
            _ => {}
        }
    }
    let name = name.ok_or(FieldError::Missing("FileName"))?;
    check_plain_name("FileName", &name)?;
    let url = url.ok_or(FieldError::Missing("URL"))?;
    Ok(ProductFile {
        description,
        kbytes,
        created,
        ..ProductFile::remote(&name, file_type.as_deref().unwrap_or(""), &url)
    })
}

/// Parses a bare `Product_file` list, as cut out of a reply (the CTX fixture is one).
pub fn parse_file_list(bytes: &[u8]) -> Result<Vec<ProductFile>, ReplyError> {
    let node: Node = serde_json::from_slice(bytes).map_err(json_error)?;
    let items: Vec<&Node> = match &node {
        Node::List(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, file)| {
            file_from_node(file).map_err(|problem| ReplyError::File {
                index: i + 1,
                problem,
            })
        })
        .collect()
}

//! Annotations: the formats the Mars team labelled with, read into one model, written back
//! out in any of them, and rasterised into training masks.
//!
//! Coordinates are pixels of the labelled image, x to the right and y down, with integer
//! values at pixel centres (as LabelMe, VIA and PIL use them); VOC and YOLO boxes keep
//! LabelImg's integer corners, so conversions between them are exact.

pub mod classes;
pub mod coco;
pub mod craters;
pub mod labelme;
pub mod polygonize;
pub mod rasterize;
pub mod transform;
pub mod via;
pub mod voc;
pub mod yolo;

use crate::tree::{Node, XmlError};
use std::collections::BTreeMap;

pub use classes::ClassMap;

pub type Pt = [f64; 2];

/// A binary mask over part of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    /// Row-major, `width * height` values.
    pub bits: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Rect {
        x0: f64,
        y0: f64,
        x1: f64,
        y1: f64,
    },
    Circle {
        cx: f64,
        cy: f64,
        r: f64,
    },
    /// `angle` in radians, rotating the x radius towards +y.
    Ellipse {
        cx: f64,
        cy: f64,
        rx: f64,
        ry: f64,
        angle: f64,
    },
    Polygon(Vec<Pt>),
    Polyline(Vec<Pt>),
    Point(Pt),
    Mask(Mask),
}

impl Shape {
    /// `[xmin, ymin, xmax, ymax]`.
    pub fn bbox(&self) -> [f64; 4] {
        let of_points = |points: &[Pt]| {
            points.iter().fold(
                [
                    f64::INFINITY,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    f64::NEG_INFINITY,
                ],
                |[a, b, c, d], [x, y]| [a.min(*x), b.min(*y), c.max(*x), d.max(*y)],
            )
        };
        match self {
            Shape::Rect { x0, y0, x1, y1 } => [x0.min(*x1), y0.min(*y1), x0.max(*x1), y0.max(*y1)],
            Shape::Circle { cx, cy, r } => [cx - r, cy - r, cx + r, cy + r],
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let (s, c) = angle.sin_cos();
                let half_w = ((rx * c).powi(2) + (ry * s).powi(2)).sqrt();
                let half_h = ((rx * s).powi(2) + (ry * c).powi(2)).sqrt();
                [cx - half_w, cy - half_h, cx + half_w, cy + half_h]
            }
            Shape::Polygon(points) | Shape::Polyline(points) => of_points(points),
            Shape::Point([x, y]) => [*x, *y, *x, *y],
            Shape::Mask(mask) => {
                let mut points = Vec::new();
                for (i, _) in mask.bits.iter().enumerate().filter(|(_, b)| **b) {
                    let (x, y) = ((i as u32 % mask.width), (i as u32 / mask.width));
                    points.push([(mask.x + x) as f64, (mask.y + y) as f64]);
                }
                of_points(&points)
            }
        }
    }

    /// The outline as a polygon: exact for rectangles and polygons, 64 vertices for circles
    /// and ellipses. A polyline of three or more points is closed into its polygon (people
    /// trace outlines as polylines in VIA, and area formats need them closed); lines, points
    /// and masks give `None`.
    pub fn to_polygon(&self) -> Option<Vec<Pt>> {
        let ellipse = |cx: f64, cy: f64, rx: f64, ry: f64, angle: f64| {
            let (s, c) = angle.sin_cos();
            (0..64)
                .map(|i| {
                    let t = i as f64 * std::f64::consts::TAU / 64.0;
                    let (x, y) = (rx * t.cos(), ry * t.sin());
                    [cx + x * c - y * s, cy + x * s + y * c]
                })
                .collect()
        };
        match self {
            Shape::Rect { .. } => {
                let [x0, y0, x1, y1] = self.bbox();
                Some(vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
            }
            Shape::Circle { cx, cy, r } => Some(ellipse(*cx, *cy, *r, *r, 0.0)),
            Shape::Ellipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => Some(ellipse(*cx, *cy, *rx, *ry, *angle)),
            Shape::Polygon(points) => Some(points.clone()),
            Shape::Polyline(points) if points.len() >= 3 => Some(points.clone()),
            Shape::Polyline(_) | Shape::Point(_) | Shape::Mask(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Rect { .. } => "rect",
            Shape::Circle { .. } => "circle",
            Shape::Ellipse { .. } => "ellipse",
            Shape::Polygon(_) => "polygon",
            Shape::Polyline(_) => "polyline",
            Shape::Point(_) => "point",
            Shape::Mask(_) => "mask",
        }
    }
}

/// One labelled thing in an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub class: String,
    pub shape: Shape,
    pub difficult: bool,
    pub truncated: bool,
    /// Parts of one instance share a group (LabelMe `group_id`, a COCO annotation id).
    pub group: Option<i64>,
    /// Other attributes the source format carried (VIA region attributes, LabelMe flags).
    pub attributes: BTreeMap<String, String>,
}

impl Object {
    pub fn new(class: impl Into<String>, shape: Shape) -> Self {
        Object {
            class: class.into(),
            shape,
            difficult: false,
            truncated: false,
            group: None,
            attributes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
    /// Channels: 1 grayscale, 3 colour.
    pub depth: u32,
}

/// The labels of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageLabels {
    /// The image's file name as the annotation names it.
    pub image: String,
    pub size: Option<ImageSize>,
    pub objects: Vec<Object>,
    /// File-level fields of the source format (VOC folder and path, VIA file attributes).
    pub attributes: BTreeMap<String, String>,
}

impl ImageLabels {
    pub fn new(image: impl Into<String>, size: Option<ImageSize>) -> Self {
        ImageLabels {
            image: image.into(),
            size,
            objects: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("{context}: {problem}")]
    Invalid { context: String, problem: String },
    #[error("{context}: the image size is unknown; {why}")]
    NoSize { context: String, why: &'static str },
    #[error("{context}: unknown class {class:?}")]
    UnknownClass { context: String, class: String },
}

pub(crate) fn invalid(context: impl Into<String>, problem: impl Into<String>) -> LabelError {
    LabelError::Invalid {
        context: context.into(),
        problem: problem.into(),
    }
}

pub(crate) fn parse_json(text: &str) -> Result<Node<'_>, LabelError> {
    serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| LabelError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// A number from a tree node (JSON numbers arrive as text).
pub(crate) fn number(context: &str, field: &str, node: Option<&Node>) -> Result<f64, LabelError> {
    match node {
        Some(Node::Text(text)) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                invalid(
                    context,
                    format!("{field}: expected a number, found {text:?}"),
                )
            }),
        Some(other) => Err(invalid(
            context,
            format!("{field}: expected a number, found {}", other.describe()),
        )),
        None => Err(invalid(context, format!("{field} is missing"))),
    }
}

/// A list of numbers (`all_points_x`, LabelMe point pairs flattened, COCO polygons).
pub(crate) fn numbers(
    context: &str,
    field: &str,
    node: Option<&Node>,
) -> Result<Vec<f64>, LabelError> {
    match node {
        Some(Node::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| number(context, &format!("{field}[{i}]"), Some(item)))
            .collect(),
        Some(other) => Err(invalid(
            context,
            format!(
                "{field}: expected a list of numbers, found {}",
                other.describe()
            ),
        )),
        None => Err(invalid(context, format!("{field} is missing"))),
    }
}

pub(crate) fn text<'a>(node: Option<&'a Node>) -> Option<&'a str> {
    match node {
        Some(Node::Text(text)) => Some(text.as_ref()),
        _ => None,
    }
}

/// Clips shape points to the image (labelling tools let people drag past the border) and
/// counts the shapes that reached outside; circles and ellipses are counted but left whole,
/// since rasterising clips them anyway.
pub fn clip_to_image(labels: &mut ImageLabels) -> usize {
    let Some(size) = labels.size else { return 0 };
    // The image's extent, 0..=width: LabelImg's boxes run from 1 to the width inclusive, and
    // points on the far edge are legitimate in the other formats.
    let (w, h) = (size.width as f64, size.height as f64);
    let clip = |p: &mut Pt| {
        let clipped = [p[0].clamp(0.0, w), p[1].clamp(0.0, h)];
        let changed = clipped != *p;
        *p = clipped;
        changed
    };
    let mut count = 0;
    for object in &mut labels.objects {
        let changed = match &mut object.shape {
            Shape::Rect { x0, y0, x1, y1 } => {
                let mut a = [*x0, *y0];
                let mut b = [*x1, *y1];
                let changed = clip(&mut a) | clip(&mut b);
                (*x0, *y0, *x1, *y1) = (a[0], a[1], b[0], b[1]);
                changed
            }
            Shape::Polygon(points) | Shape::Polyline(points) => {
                points.iter_mut().fold(false, |acc, p| clip(p) | acc)
            }
            Shape::Point(p) => clip(p),
            Shape::Circle { .. } | Shape::Ellipse { .. } => {
                let [x0, y0, x1, y1] = object.shape.bbox();
                x0 < 0.0 || y0 < 0.0 || x1 > w || y1 > h
            }
            Shape::Mask(_) => false,
        };
        count += usize::from(changed);
    }
    count
}

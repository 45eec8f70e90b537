//! Annotations: the formats the Mars team labelled with, read into one model, written back
//! out in any of them, and rasterised into training masks.
//!
//! Coordinates are continuous pixel positions in the labelled image, in f64: x to the right,
//! y down, the image spanning `0..width` x `0..height`, so pixel `(i, j)` is the square from
//! `(i, j)` to `(i + 1, j + 1)`. This is COCO's convention, and LabelMe's, VIA's and
//! LabelImg's (their points are where the mouse was on the image). Each format's own
//! convention is applied once, in its reader and writer: YOLO's fractions of the image size in
//! `yolo`, COCO's `[x, y, w, h]` in `coco`, VOC's corners in `voc` (LabelImg's practice, not
//! the 1-based pixel indices of the VOC devkit: the README's annotation section says why).
//! Rasterising alone works on pixel indices (as PIL, which LabelMe's masks come from).

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

/// The box holding every box `[x0, y0, x1, y1]` given (inverted infinities for none).
fn union(boxes: impl Iterator<Item = [f64; 4]>) -> [f64; 4] {
    boxes.fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |[a, b, c, d], [x0, y0, x1, y1]| [a.min(x0), b.min(y0), c.max(x1), d.max(y1)],
    )
}

impl Shape {
    /// `[xmin, ymin, xmax, ymax]`.
    pub fn bbox(&self) -> [f64; 4] {
        let of_points = |points: &[Pt]| union(points.iter().map(|&[x, y]| [x, y, x, y]));
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
            // A set pixel covers its whole square, so the box reaches one past the last index
            // (as pycocotools' `toBbox`).
            Shape::Mask(mask) => {
                let mut points = Vec::new();
                for (i, _) in mask.bits.iter().enumerate().filter(|(_, b)| **b) {
                    let (x, y) = ((i as u32 % mask.width), (i as u32 / mask.width));
                    let (x, y) = ((mask.x + x) as f64, (mask.y + y) as f64);
                    points.extend([[x, y], [x + 1.0, y + 1.0]]);
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
    /// Parts of one instance share a group (LabelMe `group_id`, a COCO annotation id): the
    /// objects of one class and group are one object (see [`ImageLabels::instances`]).
    pub group: Option<i64>,
    /// The box the source recorded for the instance (COCO's `bbox`, `[x0, y0, x1, y1]`), which
    /// box formats write in place of the shape's bounds. Moving the shape drops it: from then
    /// on the shape's own bounds are its box.
    pub recorded_box: Option<[f64; 4]>,
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
            recorded_box: None,
            attributes: BTreeMap::new(),
        }
    }

    /// The object with its shape replaced by `shape` (moved, turned, cropped): a recorded box
    /// no longer describes it.
    pub fn reshaped(&self, shape: Shape) -> Object {
        Object {
            shape,
            recorded_box: None,
            ..self.clone()
        }
    }
}

/// One labelled thing however many parts its format split it into: a COCO annotation whose
/// segmentation has several polygons, LabelMe shapes sharing a `group_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance<'a> {
    pub class: &'a str,
    pub parts: Vec<&'a Object>,
}

impl Instance<'_> {
    /// The recorded box if the source gave one, else the bounds of every part.
    pub fn bbox(&self) -> [f64; 4] {
        if let Some(recorded) = self.parts.iter().find_map(|p| p.recorded_box) {
            return recorded;
        }
        union(self.parts.iter().map(|p| p.shape.bbox()))
    }

    /// Any part marked difficult makes the instance difficult (and truncated likewise).
    pub fn difficult(&self) -> bool {
        self.parts.iter().any(|p| p.difficult)
    }

    pub fn truncated(&self) -> bool {
        self.parts.iter().any(|p| p.truncated)
    }

    pub fn crowd(&self) -> bool {
        self.parts
            .iter()
            .any(|p| p.attributes.get("iscrowd").is_some_and(|c| c == "1"))
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

    /// The instances, in the order of their first parts: objects of one class sharing a
    /// group are one instance, an object without a group is one alone.
    pub fn instances(&self) -> Vec<Instance<'_>> {
        let mut instances: Vec<Instance<'_>> = Vec::new();
        let mut by_group: std::collections::HashMap<(&str, i64), usize> = Default::default();
        for object in &self.objects {
            let key = object.group.map(|group| (object.class.as_str(), group));
            if let Some(&index) = key.as_ref().and_then(|key| by_group.get(key)) {
                instances[index].parts.push(object);
                continue;
            }
            if let Some(key) = key {
                by_group.insert(key, instances.len());
            }
            instances.push(Instance {
                class: &object.class,
                parts: vec![object],
            });
        }
        instances
    }
}

/// What one annotation file holds.
#[derive(Debug)]
pub struct LabelFile {
    pub images: Vec<ImageLabels>,
    /// The class map the file defines itself (a COCO file's categories, under their ids).
    pub classes: Option<ClassMap>,
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

fn finite(context: &str, field: &str, text: &str) -> Result<f64, LabelError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            invalid(
                context,
                format!("{field}: expected a number, found {text:?}"),
            )
        })
}

/// A number from a JSON field. The JSON formats define coordinates and sizes as numbers, so
/// a string such as `"500"` is refused, not read.
pub(crate) fn number(context: &str, field: &str, node: Option<&Node>) -> Result<f64, LabelError> {
    match node {
        Some(Node::Number(text)) => finite(context, field, text),
        Some(Node::Text(text)) => Err(invalid(
            context,
            format!("{field}: expected a number, found the string {text:?}"),
        )),
        Some(other) => Err(invalid(
            context,
            format!("{field}: expected a number, found {}", other.describe()),
        )),
        None => Err(invalid(context, format!("{field} is missing"))),
    }
}

/// A number from XML text (XML has no numbers of its own).
pub(crate) fn xml_number(
    context: &str,
    field: &str,
    node: Option<&Node>,
) -> Result<f64, LabelError> {
    match node {
        Some(Node::Text(text)) => finite(context, field, text),
        Some(other) => Err(invalid(
            context,
            format!("{field}: expected a number, found {}", other.describe()),
        )),
        None => Err(invalid(context, format!("{field} is missing"))),
    }
}

/// A whole number from a JSON field (ids, image sizes).
pub(crate) fn whole(context: &str, field: &str, node: Option<&Node>) -> Result<i64, LabelError> {
    let value = number(context, field, node)?;
    if value.fract() != 0.0 || value.abs() > (1u64 << 53) as f64 {
        return Err(invalid(
            context,
            format!("{field}: expected a whole number, found {value}"),
        ));
    }
    Ok(value as i64)
}

/// An image side from a JSON field: a whole number of at least 1.
pub(crate) fn side(context: &str, field: &str, node: Option<&Node>) -> Result<u32, LabelError> {
    let value = whole(context, field, node)?;
    u32::try_from(value).ok().filter(|v| *v > 0).ok_or_else(|| {
        invalid(
            context,
            format!("{field}: expected a size of at least 1 pixel, found {value}"),
        )
    })
}

/// A list of numbers (`all_points_x`, LabelMe point pairs, COCO polygons).
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

/// A box's width or height from a file: zero or more (a negative size is an error, never
/// silently mirrored).
pub(crate) fn box_extent(context: &str, field: &str, value: f64) -> Result<f64, LabelError> {
    if value < 0.0 {
        return Err(invalid(
            context,
            format!("{field} is {value}: a box cannot have a negative size"),
        ));
    }
    Ok(value)
}

/// A coordinate for a JSON file: [`written`], and a whole number as an integer (`417`, not
/// `417.0`), as COCO's and VIA's own tools write them.
pub(crate) fn json_coordinate(value: f64) -> serde_json::Value {
    let value = written(value);
    if value.fract() == 0.0 && value.abs() < 9e15 {
        (value as i64).into()
    } else {
        value.into()
    }
}

/// A coordinate as written to a file: rounded to a millionth of a pixel, so that the
/// arithmetic of a conversion (`x + w - x`) does not print as `30.700000000000003`.
pub(crate) fn written(value: f64) -> f64 {
    let rounded = (value * 1e6).round() / 1e6;
    if rounded == 0.0 {
        0.0
    } else {
        rounded
    }
}

pub(crate) fn text<'a>(node: Option<&'a Node>) -> Option<&'a str> {
    match node {
        Some(Node::Text(text)) => Some(text.as_ref()),
        _ => None,
    }
}

/// What [`clip_to_image`] did to an image's labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Clipping {
    /// Shapes reaching outside the image, cut at its edge.
    pub clipped: usize,
    /// Shapes wholly outside the image, removed: "object 3 (crater) at (-20, 4)-(-2, 9)".
    pub dropped: Vec<String>,
}

/// Whether a shape has nothing inside the image's extent `0..w` x `0..h`: an area (box,
/// polygon, circle, mask) that only touches the edge along a line is outside too, a point on
/// the far edge is inside.
fn outside(shape: &Shape, w: f64, h: f64) -> bool {
    let [x0, y0, x1, y1] = shape.bbox();
    match shape {
        Shape::Point(_) | Shape::Polyline(_) => x1 < 0.0 || y1 < 0.0 || x0 > w || y0 > h,
        _ => x1 <= 0.0 || y1 <= 0.0 || x0 >= w || y0 >= h,
    }
}

/// Drops shapes wholly outside the image and clips shape points to it (labelling tools let
/// people drag past the border); circles and ellipses across the edge are counted but left
/// whole, since rasterising clips them anyway.
pub fn clip_to_image(labels: &mut ImageLabels) -> Clipping {
    let mut clipping = Clipping::default();
    let Some(size) = labels.size else {
        return clipping;
    };
    let (w, h) = (size.width as f64, size.height as f64);
    let mut number = 0;
    labels.objects.retain(|object| {
        number += 1;
        if !outside(&object.shape, w, h) {
            return true;
        }
        let [x0, y0, x1, y1] = object.shape.bbox();
        clipping.dropped.push(format!(
            "object {number} ({}) at ({x0}, {y0})-({x1}, {y1}) lies outside the {} x {} image",
            object.class, size.width, size.height
        ));
        false
    });
    let clip = |p: &mut Pt| {
        let clipped = [p[0].clamp(0.0, w), p[1].clamp(0.0, h)];
        let changed = clipped != *p;
        *p = clipped;
        changed
    };
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
        clipping.clipped += usize::from(changed);
        if let Some(recorded) = &mut object.recorded_box {
            let (mut a, mut b) = ([recorded[0], recorded[1]], [recorded[2], recorded[3]]);
            clip(&mut a);
            clip(&mut b);
            *recorded = [a[0], a[1], b[0], b[1]];
        }
    }
    clipping
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(shapes: Vec<Shape>) -> ImageLabels {
        let mut labels = ImageLabels::new(
            "a.jpg",
            Some(ImageSize {
                width: 100,
                height: 50,
                depth: 1,
            }),
        );
        labels
            .objects
            .extend(shapes.into_iter().map(|s| Object::new("crater", s)));
        labels
    }

    #[test]
    fn shapes_wholly_outside_are_dropped_and_named_and_those_across_the_edge_clipped() {
        let rect = |x0, y0, x1, y1| Shape::Rect { x0, y0, x1, y1 };
        let mut labels = labels(vec![
            rect(-20.0, 5.0, -2.0, 9.0),
            rect(-20.0, 5.0, 0.0, 9.0),
            rect(-5.0, 5.0, 10.0, 9.0),
            rect(100.0, 0.0, 120.0, 10.0),
            Shape::Point([100.0, 50.0]),
            Shape::Circle {
                cx: 50.0,
                cy: 60.0,
                r: 5.0,
            },
        ]);
        let clipping = clip_to_image(&mut labels);
        assert_eq!(
            clipping.dropped,
            [
                "object 1 (crater) at (-20, 5)-(-2, 9) lies outside the 100 x 50 image",
                "object 2 (crater) at (-20, 5)-(0, 9) lies outside the 100 x 50 image",
                "object 4 (crater) at (100, 0)-(120, 10) lies outside the 100 x 50 image",
                "object 6 (crater) at (45, 55)-(55, 65) lies outside the 100 x 50 image",
            ]
        );
        assert_eq!(clipping.clipped, 1);
        assert_eq!(
            labels
                .objects
                .iter()
                .map(|o| o.shape.clone())
                .collect::<Vec<_>>(),
            [rect(0.0, 5.0, 10.0, 9.0), Shape::Point([100.0, 50.0])],
            "the point on the far corner is inside"
        );
    }

    #[test]
    fn objects_sharing_a_class_and_group_are_one_instance() {
        let mut labels = labels(vec![
            Shape::Point([1.0, 1.0]),
            Shape::Point([5.0, 2.0]),
            Shape::Point([9.0, 3.0]),
            Shape::Point([7.0, 4.0]),
        ]);
        labels.objects[0].group = Some(1);
        labels.objects[2].group = Some(1);
        labels.objects[3].group = Some(1);
        labels.objects[3].class = "dune".into();
        let instances = labels.instances();
        let parts: Vec<(&str, usize)> =
            instances.iter().map(|i| (i.class, i.parts.len())).collect();
        assert_eq!(parts, [("crater", 2), ("crater", 1), ("dune", 1)]);
        assert_eq!(instances[0].bbox(), [1.0, 1.0, 9.0, 3.0]);
        labels.objects[2].recorded_box = Some([0.5, 0.5, 9.5, 3.5]);
        assert_eq!(labels.instances()[0].bbox(), [0.5, 0.5, 9.5, 3.5]);
        let moved = labels.objects[2].reshaped(Shape::Point([0.0, 0.0]));
        assert_eq!(moved.recorded_box, None, "a moved shape's box is its own");
    }

    #[test]
    fn json_numbers_and_strings_are_told_apart() {
        let node = parse_json(r#"{"a": 500, "b": "500", "c": 2.5}"#).unwrap();
        assert_eq!(number("f", "a", node.get("a")).unwrap(), 500.0);
        assert_eq!(
            number("f", "b", node.get("b")).unwrap_err().to_string(),
            "f: b: expected a number, found the string \"500\""
        );
        assert_eq!(
            whole("f", "c", node.get("c")).unwrap_err().to_string(),
            "f: c: expected a whole number, found 2.5"
        );
        assert_eq!(written(10.5 + 30.7 - 10.5), 30.7);
        assert_eq!(written(-0.0000001), 0.0);
    }
}

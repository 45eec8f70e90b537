//! LabelMe JSON: the old layout (3.x: no `shape_type`, every shape a polygon) and the new
//! (5.x: rectangle, circle, polygon, line, point, linestrip, mask), with or without the
//! embedded image.

use super::{invalid, parse_json, ImageLabels, ImageSize, LabelError, Mask, Object, Pt, Shape};
use crate::tree::Node;
use base64::Engine;
use serde_json::{json, Value};

/// The LabelMe version whose layout [`write`] produces.
pub const VERSION: &str = "5.7.0";

pub fn read(source: &str, text: &str) -> Result<ImageLabels, LabelError> {
    let root = parse_json(text)?;
    let image = super::text(root.get("imagePath")).unwrap_or("").to_string();
    // Old files may lack the size (it then comes from the image); a size given must be one.
    let dimension = |key: &str| {
        root.get(key)
            .map(|node| super::side(source, key, Some(node)))
            .transpose()
    };
    let size = match (dimension("imageWidth")?, dimension("imageHeight")?) {
        (Some(width), Some(height)) => Some(ImageSize {
            width,
            height,
            depth: 3,
        }),
        _ => None,
    };
    let mut labels = ImageLabels::new(image, size);
    let shapes = match root.get("shapes") {
        Some(Node::List(shapes)) => shapes.iter().collect::<Vec<_>>(),
        None => Vec::new(),
        Some(other) => {
            return Err(invalid(
                source,
                format!("shapes: expected a list, found {}", other.describe()),
            ))
        }
    };
    for (index, shape) in shapes.into_iter().enumerate() {
        let context = format!("{source}: shape {}", index + 1);
        let class = super::text(shape.get("label")).filter(|l| !l.is_empty());
        let class = class.ok_or_else(|| invalid(&context, "label is missing"))?;
        let points: Vec<Pt> = match shape.get("points") {
            Some(Node::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let pair = super::numbers(&context, &format!("points[{i}]"), Some(p))?;
                    match pair[..] {
                        [x, y] => Ok([x, y]),
                        _ => Err(invalid(
                            &context,
                            format!("points[{i}] has {} numbers, expected 2", pair.len()),
                        )),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(invalid(
                    &context,
                    format!(
                        "points: expected a list of [x, y] pairs, found {}",
                        other.describe()
                    ),
                ))
            }
            None => return Err(invalid(&context, "points is missing")),
        };
        let kind = super::text(shape.get("shape_type")).unwrap_or("polygon");
        let need = |n: usize| {
            if points.len() < n {
                Err(invalid(
                    &context,
                    format!("a {kind} needs {n} points, this one has {}", points.len()),
                ))
            } else {
                Ok(())
            }
        };
        let geometry = match kind {
            "polygon" => {
                need(3)?;
                Shape::Polygon(points.clone())
            }
            "rectangle" => {
                need(2)?;
                Shape::Rect {
                    x0: points[0][0],
                    y0: points[0][1],
                    x1: points[1][0],
                    y1: points[1][1],
                }
            }
            "circle" => {
                need(2)?;
                let [cx, cy] = points[0];
                Shape::Circle {
                    cx,
                    cy,
                    r: (points[1][0] - cx).hypot(points[1][1] - cy),
                }
            }
            "line" | "linestrip" => {
                need(2)?;
                Shape::Polyline(points.clone())
            }
            "point" => {
                need(1)?;
                Shape::Point(points[0])
            }
            "mask" => {
                need(2)?;
                let encoded = super::text(shape.get("mask"))
                    .ok_or_else(|| invalid(&context, "mask is missing"))?;
                Shape::Mask(decode_mask(&context, encoded, points[0])?)
            }
            other => return Err(invalid(&context, format!("unknown shape_type {other:?}"))),
        };
        let mut object = Object::new(class, geometry);
        object.group = shape
            .get("group_id")
            .map(|group| super::whole(&context, "group_id", Some(group)))
            .transpose()?;
        if let Some(description) = super::text(shape.get("description")).filter(|d| !d.is_empty()) {
            object
                .attributes
                .insert("description".into(), description.to_string());
        }
        if let Some(Node::Map(flags)) = shape.get("flags") {
            for (k, v) in flags {
                object.attributes.insert(format!("flag:{k}"), v.to_text());
            }
        }
        labels.objects.push(object);
    }
    Ok(labels)
}

fn decode_mask(context: &str, encoded: &str, origin: Pt) -> Result<Mask, LabelError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|e| invalid(context, format!("mask is not base64: {e}")))?;
    let image = image::load_from_memory(&bytes)
        .map_err(|e| invalid(context, format!("mask is not an image: {e}")))?
        .into_luma8();
    Ok(Mask {
        x: origin[0].round().max(0.0) as u32,
        y: origin[1].round().max(0.0) as u32,
        width: image.width(),
        height: image.height(),
        bits: image.pixels().map(|p| p.0[0] > 0).collect(),
    })
}

fn encode_mask(mask: &Mask) -> String {
    let pixels: Vec<u8> = mask.bits.iter().map(|b| if *b { 255 } else { 0 }).collect();
    let mut png = Vec::new();
    image::GrayImage::from_raw(mask.width, mask.height, pixels)
        .expect("mask bits match its size")
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG in memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(png)
}

/// Writes the 5.x layout, without the embedded image (LabelMe reads it from `imagePath`).
pub fn write(labels: &ImageLabels) -> String {
    let shapes: Vec<Value> = labels
        .objects
        .iter()
        .map(|object| {
            let (kind, points, mask) = match &object.shape {
                Shape::Rect { x0, y0, x1, y1 } => {
                    ("rectangle", vec![[*x0, *y0], [*x1, *y1]], Value::Null)
                }
                Shape::Circle { cx, cy, r } => {
                    ("circle", vec![[*cx, *cy], [cx + r, *cy]], Value::Null)
                }
                Shape::Ellipse { .. } => (
                    "polygon",
                    object.shape.to_polygon().unwrap_or_default(),
                    Value::Null,
                ),
                Shape::Polygon(points) => ("polygon", points.clone(), Value::Null),
                Shape::Polyline(points) if points.len() == 2 => {
                    ("line", points.clone(), Value::Null)
                }
                Shape::Polyline(points) => ("linestrip", points.clone(), Value::Null),
                Shape::Point(p) => ("point", vec![*p], Value::Null),
                Shape::Mask(mask) => (
                    "mask",
                    vec![
                        [mask.x as f64, mask.y as f64],
                        [
                            (mask.x + mask.width - 1) as f64,
                            (mask.y + mask.height - 1) as f64,
                        ],
                    ],
                    Value::String(encode_mask(mask)),
                ),
            };
            let flags: serde_json::Map<String, Value> = object
                .attributes
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        k.strip_prefix("flag:")?.to_string(),
                        Value::Bool(v == "True"),
                    ))
                })
                .collect();
            json!({
                "label": object.class,
                "points": points,
                "group_id": object.group,
                "description": object.attributes.get("description").cloned().unwrap_or_default(),
                "shape_type": kind,
                "flags": flags,
                "mask": mask,
            })
        })
        .collect();
    let (width, height) = labels.size.map_or((Value::Null, Value::Null), |s| {
        (s.width.into(), s.height.into())
    });
    serde_json::to_string_pretty(&json!({
        "version": VERSION,
        "flags": {},
        "shapes": shapes,
        "imagePath": labels.image,
        "imageData": null,
        "imageHeight": height,
        "imageWidth": width,
    }))
    .expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_labelme_files_are_polygons() {
        let old = r#"{"shapes":[{"label":"bus","line_color":null,"fill_color":null,"points":[[1.5,2],[8,2],[8,9.25]]}],"lineColor":[0,255,0,128],"imagePath":"a.jpg","imageData":null}"#;
        let labels = read("old.json", old).unwrap();
        assert_eq!(labels.image, "a.jpg");
        assert_eq!(labels.size, None);
        assert_eq!(
            labels.objects[0].shape,
            Shape::Polygon(vec![[1.5, 2.0], [8.0, 2.0], [8.0, 9.25]])
        );
    }

    #[test]
    fn every_new_shape_type_reads_and_writes_back() {
        let mut labels = ImageLabels::new(
            "p.jpg",
            Some(ImageSize {
                width: 560,
                height: 450,
                depth: 3,
            }),
        );
        let shapes = [
            Shape::Rect {
                x0: 32.0,
                y0: 35.0,
                x1: 132.0,
                y1: 135.0,
            },
            Shape::Circle {
                cx: 195.0,
                cy: 84.0,
                r: 30.0,
            },
            Shape::Polygon(vec![[69.0, 318.0], [45.0, 403.0], [173.0, 406.0]]),
            Shape::Polyline(vec![[188.0, 178.0], [160.0, 224.0]]),
            Shape::Polyline(vec![[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]),
            Shape::Point([345.0, 174.0]),
            Shape::Mask(Mask {
                x: 10,
                y: 20,
                width: 3,
                height: 2,
                bits: vec![true, false, true, false, true, true],
            }),
        ];
        for (i, shape) in shapes.into_iter().enumerate() {
            let mut object = Object::new(format!("c{i}"), shape);
            object.group = (i == 2).then_some(4);
            labels.objects.push(object);
        }
        let text = write(&labels);
        assert!(text.contains("\"shape_type\": \"linestrip\""));
        let back = read("new.json", &text).unwrap();
        assert_eq!(back.objects, labels.objects);
        assert_eq!(back.size.map(|s| (s.width, s.height)), Some((560, 450)));
    }

    #[test]
    fn broken_shapes_are_named() {
        let err = |shapes: &str| {
            read(
                "l.json",
                &format!(r#"{{"imagePath":"x.jpg","shapes":{shapes}}}"#),
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(r#"[{"label":"a","points":[[1,2],[3,4]]}]"#),
            "l.json: shape 1: a polygon needs 3 points, this one has 2"
        );
        assert_eq!(
            err(r#"[{"label":"a","points":[[1,2,3]],"shape_type":"point"}]"#),
            "l.json: shape 1: points[0] has 3 numbers, expected 2"
        );
        assert_eq!(
            err(r#"[{"label":"","points":[[1,2]]}]"#),
            "l.json: shape 1: label is missing"
        );
        assert_eq!(
            err(r#"[{"label":"a","points":"[[1,2],[3,4],[5,6]]"}]"#),
            "l.json: shape 1: points: expected a list of [x, y] pairs, found a string"
        );
        assert_eq!(
            err(r#"[{"label":"a","points":[["1",2],[3,4],[5,6]]}]"#),
            "l.json: shape 1: points[0][0]: expected a number, found the string \"1\""
        );
        assert_eq!(
            err(r#"[{"label":"a","points":[[1,2],[3,4]],"shape_type":"mask","mask":"!!"}]"#)
                .split(':')
                .take(3)
                .collect::<Vec<_>>()
                .join(":"),
            "l.json: shape 1: mask is not base64"
        );
        assert_eq!(
            err(r#"[{"label":"a","points":[[1,2]],"shape_type":"blob"}]"#),
            "l.json: shape 1: unknown shape_type \"blob\""
        );
    }
}

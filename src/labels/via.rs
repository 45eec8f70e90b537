//! VGG Image Annotator (VIA) 1.x and 2.x: project files and exported annotations.
//!
//! 1.x keeps an image's regions in an object keyed "0", "1", ...; 2.x in a list. A 2.x
//! project wraps the images in `_via_img_metadata`. The class is a region attribute (often
//! the only one, such as `{"anomaly": "8"}`); `class_attribute` picks one by name, and
//! `default_class` covers regions that have none.

use super::{invalid, parse_json, ImageLabels, LabelError, Object, Shape};
use crate::tree::Node;
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Default)]
pub struct ViaOptions {
    pub class_attribute: Option<String>,
    pub default_class: Option<String>,
}

pub fn read(
    source: &str,
    text: &str,
    options: &ViaOptions,
) -> Result<Vec<ImageLabels>, LabelError> {
    let root = parse_json(text)?;
    let images = root.get("_via_img_metadata").unwrap_or(&root);
    let Node::Map(entries) = images else {
        return Err(invalid(
            source,
            format!("expected an object of images, found {}", images.describe()),
        ));
    };
    let mut out = Vec::new();
    for (key, image) in entries {
        if key.starts_with("_via_") {
            continue;
        }
        let name = super::text(image.get("filename"))
            .unwrap_or(key)
            .to_string();
        let context = format!("{source}: image {name:?}");
        let mut labels = ImageLabels::new(&name, None);
        if let Some(size) = image.get("size").and_then(Node::scalar) {
            labels
                .attributes
                .insert("via_size".into(), size.to_string());
        }
        if let Some(Node::Map(attributes)) = image.get("file_attributes") {
            for (k, v) in attributes {
                labels.attributes.insert(k.to_string(), v.to_text());
            }
        }
        let regions: Vec<(String, &Node)> = match image.get("regions") {
            Some(Node::List(items)) => items
                .iter()
                .enumerate()
                .map(|(i, r)| (i.to_string(), r))
                .collect(),
            Some(Node::Map(items)) => items.iter().map(|(k, r)| (k.to_string(), r)).collect(),
            Some(Node::Text(t)) if t.is_empty() => Vec::new(),
            None => Vec::new(),
            Some(other) => {
                return Err(invalid(
                    &context,
                    format!(
                        "regions: expected a list or an object, found {}",
                        other.describe()
                    ),
                ))
            }
        };
        for (id, region) in regions {
            let context = format!("{context}, region {id}");
            labels
                .objects
                .push(region_object(&context, region, options)?);
        }
        out.push(labels);
    }
    Ok(out)
}

fn region_object(context: &str, region: &Node, options: &ViaOptions) -> Result<Object, LabelError> {
    let shape_node = region
        .get("shape_attributes")
        .ok_or_else(|| invalid(context, "shape_attributes is missing"))?;
    let num = |field: &str| super::number(context, field, shape_node.get(field));
    let points = || -> Result<Vec<[f64; 2]>, LabelError> {
        let xs = super::numbers(context, "all_points_x", shape_node.get("all_points_x"))?;
        let ys = super::numbers(context, "all_points_y", shape_node.get("all_points_y"))?;
        if xs.len() != ys.len() {
            return Err(invalid(
                context,
                format!("{} x values but {} y values", xs.len(), ys.len()),
            ));
        }
        Ok(xs.into_iter().zip(ys).map(|(x, y)| [x, y]).collect())
    };
    let kind = super::text(shape_node.get("name")).unwrap_or("");
    let shape = match kind {
        "rect" => {
            let (x, y, w, h) = (num("x")?, num("y")?, num("width")?, num("height")?);
            super::box_extent(context, "width", w)?;
            super::box_extent(context, "height", h)?;
            Shape::Rect {
                x0: x,
                y0: y,
                x1: x + w,
                y1: y + h,
            }
        }
        "circle" => Shape::Circle {
            cx: num("cx")?,
            cy: num("cy")?,
            r: num("r")?,
        },
        "ellipse" => Shape::Ellipse {
            cx: num("cx")?,
            cy: num("cy")?,
            rx: num("rx")?,
            ry: num("ry")?,
            angle: if shape_node.get("theta").is_some() {
                num("theta")?
            } else {
                0.0
            },
        },
        "polygon" => {
            let points = points()?;
            if points.len() < 3 {
                return Err(invalid(
                    context,
                    format!("a polygon needs 3 points, this one has {}", points.len()),
                ));
            }
            Shape::Polygon(points)
        }
        "polyline" => Shape::Polyline(points()?),
        "point" => Shape::Point([num("cx")?, num("cy")?]),
        other => return Err(invalid(context, format!("unknown shape {other:?}"))),
    };
    let mut attributes = std::collections::BTreeMap::new();
    if let Some(Node::Map(entries)) = region.get("region_attributes") {
        for (k, v) in entries {
            attributes.insert(k.to_string(), v.to_text());
        }
    }
    let class = match &options.class_attribute {
        Some(key) => attributes.get(key).filter(|v| !v.is_empty()).cloned(),
        None => {
            let mut values = attributes.values().filter(|v| !v.is_empty());
            match (values.next(), values.next()) {
                (Some(only), None) => Some(only.clone()),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        context,
                        format!(
                            "several region attributes ({}); say which is the class",
                            attributes.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ))
                }
                _ => None,
            }
        }
    };
    let class = class
        .or_else(|| options.default_class.clone())
        .ok_or_else(|| {
            invalid(
                context,
                "the region has no class and no default class was given",
            )
        })?;
    let mut object = Object::new(class, shape);
    object.attributes = attributes;
    Ok(object)
}

/// Writes VIA 2.x exported annotations (the object VIA's "Export annotations (as json)"
/// makes). Masks have no VIA shape and are skipped and counted.
pub fn write(images: &[ImageLabels], class_attribute: &str) -> (String, usize) {
    let mut root = Map::new();
    let mut skipped = 0;
    for labels in images {
        let size: i64 = labels
            .attributes
            .get("via_size")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let mut regions = Vec::new();
        for object in &labels.objects {
            let shape = match &object.shape {
                Shape::Rect { .. } => {
                    let [x0, y0, x1, y1] = object.shape.bbox();
                    json!({"name": "rect", "x": x0, "y": y0, "width": super::json_coordinate(x1 - x0), "height": super::json_coordinate(y1 - y0)})
                }
                Shape::Circle { cx, cy, r } => {
                    json!({"name": "circle", "cx": cx, "cy": cy, "r": r})
                }
                Shape::Ellipse {
                    cx,
                    cy,
                    rx,
                    ry,
                    angle,
                } => {
                    json!({"name": "ellipse", "cx": cx, "cy": cy, "rx": rx, "ry": ry, "theta": angle})
                }
                Shape::Polygon(points) | Shape::Polyline(points) => json!({
                    "name": object.shape.kind(),
                    "all_points_x": points.iter().map(|p| p[0]).collect::<Vec<_>>(),
                    "all_points_y": points.iter().map(|p| p[1]).collect::<Vec<_>>(),
                }),
                Shape::Point([x, y]) => json!({"name": "point", "cx": x, "cy": y}),
                Shape::Mask(_) => {
                    skipped += 1;
                    continue;
                }
            };
            let mut attributes: Map<String, Value> = object
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            attributes.insert(
                class_attribute.to_string(),
                Value::String(object.class.clone()),
            );
            regions.push(json!({"shape_attributes": shape, "region_attributes": attributes}));
        }
        let file_attributes: Map<String, Value> = labels
            .attributes
            .iter()
            .filter(|(k, _)| *k != "via_size")
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        root.insert(
            format!("{}{size}", labels.image),
            json!({"filename": labels.image, "size": size, "regions": regions, "file_attributes": file_attributes}),
        );
    }
    (Value::Object(root).to_string(), skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIA1: &str = r#"{"a.jpg123":{"fileref":"","size":123,"filename":"a.jpg","base64_img_data":"","file_attributes":{},
      "regions":{"0":{"shape_attributes":{"name":"polygon","all_points_x":[1,5,5],"all_points_y":[1,1,4]},"region_attributes":{"anomaly":"8"}},
                 "1":{"shape_attributes":{"name":"circle","cx":10,"cy":10,"r":3},"region_attributes":{}}}}}"#;

    #[test]
    fn via1_regions_keyed_by_number_with_a_default_class() {
        let options = ViaOptions {
            default_class: Some("8".into()),
            ..ViaOptions::default()
        };
        let images = read("v.json", VIA1, &options).unwrap();
        assert_eq!(images.len(), 1);
        let objects = &images[0].objects;
        assert_eq!(objects[0].class, "8");
        assert_eq!(
            objects[0].shape,
            Shape::Polygon(vec![[1.0, 1.0], [5.0, 1.0], [5.0, 4.0]])
        );
        assert_eq!(objects[1].class, "8", "no attribute: the default");
        assert_eq!(
            objects[1].shape,
            Shape::Circle {
                cx: 10.0,
                cy: 10.0,
                r: 3.0
            }
        );
        let err = read("v.json", VIA1, &ViaOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "v.json: image \"a.jpg\", region 1: the region has no class and no default class was given");
    }

    #[test]
    fn via2_projects_and_exports_round_trip() {
        let project = r#"{"_via_settings":{},"_via_img_metadata":{"b.png-1":{"filename":"b.png","size":-1,"file_attributes":{},
          "regions":[{"shape_attributes":{"name":"rect","x":79,"y":484,"width":45,"height":28},"region_attributes":{"animal":"crab"}},
                     {"shape_attributes":{"name":"ellipse","cx":50,"cy":60,"rx":10,"ry":5,"theta":0.5},"region_attributes":{"animal":"crab"}},
                     {"shape_attributes":{"name":"polyline","all_points_x":[1,2,3],"all_points_y":[4,5,6]},"region_attributes":{"animal":"pipe"}},
                     {"shape_attributes":{"name":"point","cx":7,"cy":8},"region_attributes":{"animal":"crab"}}]}},"_via_attributes":{}}"#;
        let images = read("p.json", project, &ViaOptions::default()).unwrap();
        let objects = &images[0].objects;
        assert_eq!(
            objects[0].shape,
            Shape::Rect {
                x0: 79.0,
                y0: 484.0,
                x1: 124.0,
                y1: 512.0
            }
        );
        assert_eq!(
            objects[1].shape,
            Shape::Ellipse {
                cx: 50.0,
                cy: 60.0,
                rx: 10.0,
                ry: 5.0,
                angle: 0.5
            }
        );
        assert_eq!(
            (objects[2].class.as_str(), objects[2].shape.kind()),
            ("pipe", "polyline")
        );
        assert_eq!(objects[3].shape, Shape::Point([7.0, 8.0]));
        let (text, skipped) = write(&images, "animal");
        assert_eq!(skipped, 0);
        assert_eq!(
            read("w.json", &text, &ViaOptions::default()).unwrap(),
            images
        );
    }

    #[test]
    fn broken_regions_are_named() {
        let bad = r#"{"c.jpg1":{"filename":"c.jpg","regions":[{"shape_attributes":{"name":"polygon","all_points_x":[1,2],"all_points_y":[1,2]},"region_attributes":{"k":"x"}}]}}"#;
        assert_eq!(
            read("b.json", bad, &ViaOptions::default())
                .unwrap_err()
                .to_string(),
            "b.json: image \"c.jpg\", region 0: a polygon needs 3 points, this one has 2"
        );
        let uneven = bad.replace(
            "[1,2],\"all_points_y\":[1,2]",
            "[1,2,3],\"all_points_y\":[1,2]",
        );
        assert!(read("b.json", &uneven, &ViaOptions::default())
            .unwrap_err()
            .to_string()
            .contains("3 x values but 2 y values"));
        assert!(read("b.json", "{\"x\": ", &ViaOptions::default())
            .unwrap_err()
            .to_string()
            .starts_with("malformed JSON"));
    }
}

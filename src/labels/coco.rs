//! COCO instances: polygons, RLE masks (plain counts and the compressed string form) and
//! `[x, y, w, h]` boxes, with their categories.

use super::{
    invalid, parse_json, ClassMap, ImageLabels, ImageSize, LabelError, Mask, Object, Shape,
};
use crate::tree::Node;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Reads a COCO instances file into one [`ImageLabels`] per image (images without
/// annotations included). A multi-part segmentation becomes one object per part, sharing the
/// annotation's id as their group.
pub fn read(source: &str, text: &str) -> Result<Vec<ImageLabels>, LabelError> {
    let root = parse_json(text)?;
    let list = |key: &str| -> Result<Vec<&Node>, LabelError> {
        match root.get(key) {
            Some(Node::List(items)) => Ok(items.iter().collect()),
            None => Ok(Vec::new()),
            Some(other) => Err(invalid(
                source,
                format!("{key}: expected a list, found {}", other.describe()),
            )),
        }
    };
    let id_of = |context: &str, node: &Node, key: &str| -> Result<i64, LabelError> {
        let value = super::number(context, key, node.get(key))?;
        Ok(value as i64)
    };
    let mut categories = HashMap::new();
    for (i, category) in list("categories")?.into_iter().enumerate() {
        let context = format!("{source}: category {}", i + 1);
        let name = super::text(category.get("name"))
            .ok_or_else(|| invalid(&context, "name is missing"))?;
        categories.insert(id_of(&context, category, "id")?, name.to_string());
    }
    let mut images = Vec::new();
    let mut by_id = HashMap::new();
    for (i, image) in list("images")?.into_iter().enumerate() {
        let context = format!("{source}: image {}", i + 1);
        let name = super::text(image.get("file_name"))
            .ok_or_else(|| invalid(&context, "file_name is missing"))?;
        let width = super::number(&context, "width", image.get("width"))? as u32;
        let height = super::number(&context, "height", image.get("height"))? as u32;
        by_id.insert(id_of(&context, image, "id")?, images.len());
        images.push(ImageLabels::new(
            name,
            Some(ImageSize {
                width,
                height,
                depth: 3,
            }),
        ));
    }
    for (i, annotation) in list("annotations")?.into_iter().enumerate() {
        let context = format!("{source}: annotation {}", i + 1);
        let image_id = id_of(&context, annotation, "image_id")?;
        let index = *by_id.get(&image_id).ok_or_else(|| {
            invalid(
                &context,
                format!("image_id {image_id} is not among the images"),
            )
        })?;
        let category = id_of(&context, annotation, "category_id")?;
        let class = categories.get(&category).cloned().ok_or_else(|| {
            invalid(
                &context,
                format!("category_id {category} is not among the categories"),
            )
        })?;
        let group = annotation
            .get("id")
            .map(|_| id_of(&context, annotation, "id"))
            .transpose()?;
        let size = images[index].size.expect("COCO images carry their size");
        let shapes = match annotation.get("segmentation") {
            Some(Node::List(parts)) if !parts.is_empty() => parts
                .iter()
                .enumerate()
                .map(|(p, part)| {
                    let flat = super::numbers(&context, &format!("segmentation[{p}]"), Some(part))?;
                    if flat.len() < 6 || flat.len() % 2 != 0 {
                        return Err(invalid(&context, format!("segmentation[{p}] has {} numbers; a polygon needs an even number, at least 6", flat.len())));
                    }
                    Ok(Shape::Polygon(flat.chunks(2).map(|c| [c[0], c[1]]).collect()))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(rle @ Node::Map(_)) => vec![Shape::Mask(decode_rle(&context, rle, size)?)],
            _ => {
                let bbox = super::numbers(&context, "bbox", annotation.get("bbox"))?;
                let [x, y, w, h] = bbox[..] else {
                    return Err(invalid(&context, format!("bbox has {} numbers, expected 4", bbox.len())));
                };
                vec![Shape::Rect { x0: x, y0: y, x1: x + w, y1: y + h }]
            }
        };
        let crowd = super::text(annotation.get("iscrowd")).is_some_and(|c| c == "1");
        for shape in shapes {
            let mut object = Object::new(class.clone(), shape);
            object.group = group;
            if crowd {
                object.attributes.insert("iscrowd".into(), "1".into());
            }
            images[index].objects.push(object);
        }
    }
    Ok(images)
}

/// RLE counts, column-major as COCO stores them, from a list or pycocotools' string form.
fn decode_rle(context: &str, rle: &Node, size: ImageSize) -> Result<Mask, LabelError> {
    let counts: Vec<u64> = match rle.get("counts") {
        Some(Node::Text(text)) => decode_counts_string(text),
        Some(list @ Node::List(_)) => super::numbers(context, "counts", Some(list))?
            .into_iter()
            .map(|c| c as u64)
            .collect(),
        _ => return Err(invalid(context, "segmentation.counts is missing")),
    };
    let (width, height) = (size.width as usize, size.height as usize);
    let total: u64 = counts.iter().sum();
    if total != (width * height) as u64 {
        return Err(invalid(
            context,
            format!(
                "RLE covers {total} pixels, the image has {}",
                width * height
            ),
        ));
    }
    let mut bits = vec![false; width * height];
    let (mut position, mut value) = (0usize, false);
    for count in counts {
        for offset in position..position + count as usize {
            let (x, y) = (offset / height, offset % height);
            bits[y * width + x] = value;
        }
        position += count as usize;
        value = !value;
    }
    Ok(Mask {
        x: 0,
        y: 0,
        width: size.width,
        height: size.height,
        bits,
    })
}

/// pycocotools' compressed counts: 5-bit groups with a continuation bit, offset by 48, each
/// count after the second stored as a difference from the count two before.
fn decode_counts_string(text: &str) -> Vec<u64> {
    let bytes = text.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0, true);
        while more && p < bytes.len() {
            let c = bytes[p] as i64 - 48;
            x |= (c & 0x1f) << (5 * k);
            more = c & 0x20 != 0;
            p += 1;
            k += 1;
            if !more && (c & 0x10) != 0 {
                x |= -1i64 << (5 * k);
            }
        }
        if counts.len() > 2 {
            x += counts[counts.len() - 2];
        }
        counts.push(x);
    }
    counts.into_iter().map(|c| c.max(0) as u64).collect()
}

fn encode_rle(mask: &Mask, size: ImageSize) -> Vec<u64> {
    let (width, height) = (size.width as usize, size.height as usize);
    let at = |x: usize, y: usize| {
        let (mx, my) = (
            x.wrapping_sub(mask.x as usize),
            y.wrapping_sub(mask.y as usize),
        );
        mx < mask.width as usize
            && my < mask.height as usize
            && mask.bits[my * mask.width as usize + mx]
    };
    let (mut counts, mut run, mut value) = (Vec::new(), 0u64, false);
    for x in 0..width {
        for y in 0..height {
            if at(x, y) != value {
                counts.push(run);
                run = 0;
                value = !value;
            }
            run += 1;
        }
    }
    counts.push(run);
    counts
}

fn polygon_area(points: &[[f64; 2]]) -> f64 {
    let n = points.len();
    (0..n)
        .map(|i| {
            let ([x0, y0], [x1, y1]) = (points[i], points[(i + 1) % n]);
            x0 * y1 - x1 * y0
        })
        .sum::<f64>()
        .abs()
        / 2.0
}

/// Writes one COCO instances file for `images`. Category ids are the class map's ids; area
/// shapes become polygons, masks RLE; lines and points are skipped and counted.
pub fn write(images: &[ImageLabels], classes: &ClassMap) -> Result<(String, usize), LabelError> {
    let mut annotations = Vec::new();
    let mut image_entries = Vec::new();
    let mut skipped = 0;
    for (image_id, labels) in images.iter().enumerate() {
        let size = labels.size.ok_or_else(|| LabelError::NoSize {
            context: labels.image.clone(),
            why: "COCO records it",
        })?;
        image_entries.push(json!({"id": image_id, "file_name": labels.image, "width": size.width, "height": size.height}));
        for (index, object) in labels.objects.iter().enumerate() {
            let category =
                classes
                    .resolve(&object.class)
                    .ok_or_else(|| LabelError::UnknownClass {
                        context: format!("{}: object {}", labels.image, index + 1),
                        class: object.class.clone(),
                    })?;
            let (segmentation, area) = match (&object.shape, object.shape.to_polygon()) {
                (Shape::Mask(mask), _) => {
                    let area = mask.bits.iter().filter(|b| **b).count() as f64;
                    (
                        json!({"counts": encode_rle(mask, size), "size": [size.height, size.width]}),
                        area,
                    )
                }
                (_, Some(points)) => {
                    let flat: Vec<f64> = points.iter().flat_map(|p| [p[0], p[1]]).collect();
                    (json!([flat]), polygon_area(&points))
                }
                (_, None) => {
                    skipped += 1;
                    continue;
                }
            };
            let [x0, y0, x1, y1] = object.shape.bbox();
            annotations.push(json!({
                "id": annotations.len(),
                "image_id": image_id,
                "category_id": category,
                "segmentation": segmentation,
                "area": area,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "iscrowd": 0,
            }));
        }
    }
    let categories: Vec<Value> = classes
        .names()
        .iter()
        .enumerate()
        .filter(|(_, name)| !name.is_empty())
        .map(|(id, name)| json!({"id": id, "name": name, "supercategory": ""}))
        .collect();
    let out = json!({"images": image_entries, "annotations": annotations, "categories": categories, "type": "instances"});
    Ok((out.to_string(), skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(width: u32, height: u32) -> ImageSize {
        ImageSize {
            width,
            height,
            depth: 3,
        }
    }

    #[test]
    fn polygons_boxes_and_rle_read() {
        let text = r#"{"images":[{"id":7,"file_name":"a.jpg","width":4,"height":3}],
          "categories":[{"id":0,"name":"_background_"},{"id":1,"name":"crater"}],
          "annotations":[
            {"id":1,"image_id":7,"category_id":1,"segmentation":[[0,0,2,0,2,2],[3,0,3,1,2,1]],"bbox":[0,0,3,2],"iscrowd":0},
            {"id":2,"image_id":7,"category_id":1,"segmentation":[],"bbox":[1,1,2,1],"iscrowd":0},
            {"id":3,"image_id":7,"category_id":1,"segmentation":{"counts":[4,2,6],"size":[3,4]},"iscrowd":1}]}"#;
        let images = read("c.json", text).unwrap();
        let objects = &images[0].objects;
        assert_eq!(objects.len(), 4);
        assert_eq!((objects[0].group, objects[1].group), (Some(1), Some(1)));
        assert_eq!(
            objects[2].shape,
            Shape::Rect {
                x0: 1.0,
                y0: 1.0,
                x1: 3.0,
                y1: 2.0
            }
        );
        // Column-major: 4 zeros fill column 0 and the top of column 1, then 2 ones.
        let Shape::Mask(mask) = &objects[3].shape else {
            panic!()
        };
        let set: Vec<(u32, u32)> = mask
            .bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| (i as u32 % 4, i as u32 / 4))
            .collect();
        assert_eq!(set, [(1, 1), (1, 2)]);
        assert_eq!(
            objects[3].attributes.get("iscrowd").map(String::as_str),
            Some("1")
        );
    }

    #[test]
    fn compressed_counts_decode_as_pycocotools_does() {
        // Small counts are one character each: the count plus 48.
        assert_eq!(decode_counts_string("426"), vec![4, 2, 6]);
        // 100 = 4 + 3 * 32: the low group with the continuation bit (4 + 32 + 48 = 'T'),
        // then 3 + 48 = '3'.
        assert_eq!(decode_counts_string("T3"), vec![100]);
        // From the fourth count on, each is stored as a difference from the count two before:
        // [5, 1, 5, 2] is written 5, 1, 5, then 2 - 1 = 1.
        assert_eq!(decode_counts_string("5151"), vec![5, 1, 5, 2]);
    }

    #[test]
    fn writing_and_reading_back_keeps_shapes_and_areas() {
        let mut labels = ImageLabels::new("b.jpg", Some(size(10, 10)));
        labels.objects.push(Object::new(
            "crater",
            Shape::Rect {
                x0: 1.0,
                y0: 1.0,
                x1: 4.0,
                y1: 3.0,
            },
        ));
        labels.objects.push(Object::new(
            "crater",
            Shape::Mask(Mask {
                x: 2,
                y: 5,
                width: 2,
                height: 2,
                bits: vec![true, true, false, true],
            }),
        ));
        labels
            .objects
            .push(Object::new("crater", Shape::Point([1.0, 1.0])));
        let (text, skipped) = write(std::slice::from_ref(&labels), &ClassMap::mars()).unwrap();
        assert_eq!(skipped, 1);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["annotations"][0]["area"], 6.0);
        assert_eq!(value["annotations"][1]["area"], 3.0);
        assert_eq!(value["annotations"][0]["category_id"], 1);
        let back = read("b.json", &text).unwrap();
        assert_eq!(
            back[0].objects[0].shape,
            Shape::Polygon(vec![[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]])
        );
        let Shape::Mask(mask) = &back[0].objects[1].shape else {
            panic!()
        };
        let set: Vec<usize> = mask
            .bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(set, [52, 53, 63]);
        let unknown = write(
            &[ImageLabels {
                objects: vec![Object::new("volcano", Shape::Point([0.0, 0.0]))],
                ..labels
            }],
            &ClassMap::mars(),
        );
        assert_eq!(
            unknown.unwrap_err().to_string(),
            "b.jpg: object 1: unknown class \"volcano\""
        );
    }
}

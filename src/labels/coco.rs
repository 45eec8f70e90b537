//! COCO instances: polygons, RLE masks (plain counts and the compressed string form) and
//! `[x, y, w, h]` boxes, with their categories.
//!
//! One annotation is one object: the polygons of a multi-part segmentation become parts of
//! one instance (objects sharing the annotation's id as their group), and the annotation's
//! `bbox` is its box. Coordinates are COCO's own (continuous pixels from the image's corner),
//! which is areo's, so nothing is shifted either way.

use super::{
    invalid, parse_json, ClassMap, ImageLabels, ImageSize, LabelError, LabelFile, Mask, Object,
    Shape,
};
use crate::tree::Node;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Category ids above this are refused: a class map holds every id up to the largest.
const LARGEST_CATEGORY_ID: i64 = 65_535;

fn list<'n, 'a>(
    source: &str,
    root: &'n Node<'a>,
    key: &str,
) -> Result<Vec<&'n Node<'a>>, LabelError> {
    match root.get(key) {
        Some(Node::List(items)) => Ok(items.iter().collect()),
        None => Ok(Vec::new()),
        Some(other) => Err(invalid(
            source,
            format!("{key}: expected a list, found {}", other.describe()),
        )),
    }
}

/// A COCO file's categories, by id.
fn read_categories(source: &str, root: &Node) -> Result<Vec<(i64, String)>, LabelError> {
    let mut categories = Vec::new();
    for (i, category) in list(source, root, "categories")?.into_iter().enumerate() {
        let context = format!("{source}: category {}", i + 1);
        let name = super::text(category.get("name"))
            .ok_or_else(|| invalid(&context, "name is missing"))?;
        let id = super::whole(&context, "id", category.get("id"))?;
        if !(0..=LARGEST_CATEGORY_ID).contains(&id) {
            return Err(invalid(
                &context,
                format!("id {id} is not between 0 and {LARGEST_CATEGORY_ID}"),
            ));
        }
        if categories.iter().any(|(other, _)| *other == id) {
            return Err(invalid(&context, format!("id {id} is given twice")));
        }
        categories.push((id, name.to_string()));
    }
    Ok(categories)
}

/// Reads a COCO instances file into one [`ImageLabels`] per image (images without
/// annotations included) and the class map its categories make (each under its own id; none
/// when two categories name one class as a class map compares names).
pub fn read(source: &str, text: &str) -> Result<LabelFile, LabelError> {
    let root = parse_json(text)?;
    let listed = read_categories(source, &root)?;
    let classes = ClassMap::numbered(
        source,
        listed.iter().map(|(id, name)| (*id as usize, name.clone())),
    )
    .ok();
    let categories: HashMap<i64, String> = listed.into_iter().collect();
    let mut images = Vec::new();
    let mut by_id = HashMap::new();
    for (i, image) in list(source, &root, "images")?.into_iter().enumerate() {
        let context = format!("{source}: image {}", i + 1);
        let name = super::text(image.get("file_name"))
            .ok_or_else(|| invalid(&context, "file_name is missing"))?;
        let width = super::side(&context, "width", image.get("width"))?;
        let height = super::side(&context, "height", image.get("height"))?;
        let id = super::whole(&context, "id", image.get("id"))?;
        if by_id.insert(id, images.len()).is_some() {
            return Err(invalid(&context, format!("id {id} is given twice")));
        }
        images.push(ImageLabels::new(
            name,
            Some(ImageSize {
                width,
                height,
                depth: 3,
            }),
        ));
    }
    for (i, annotation) in list(source, &root, "annotations")?.into_iter().enumerate() {
        let context = format!("{source}: annotation {}", i + 1);
        let image_id = super::whole(&context, "image_id", annotation.get("image_id"))?;
        let index = *by_id.get(&image_id).ok_or_else(|| {
            invalid(
                &context,
                format!("image_id {image_id} is not among the images"),
            )
        })?;
        let category = super::whole(&context, "category_id", annotation.get("category_id"))?;
        let class = categories.get(&category).cloned().ok_or_else(|| {
            invalid(
                &context,
                format!("category_id {category} is not among the categories"),
            )
        })?;
        // Parts of one annotation share its id; an annotation without one (not valid COCO,
        // but seen) still keeps its parts together under a group no id can take.
        let group = match annotation.get("id") {
            Some(_) => super::whole(&context, "id", annotation.get("id"))?,
            None => -(i as i64) - 1,
        };
        let bbox = match annotation.get("bbox") {
            Some(node) => {
                let numbers = super::numbers(&context, "bbox", Some(node))?;
                let [x, y, w, h] = numbers[..] else {
                    return Err(invalid(
                        &context,
                        format!("bbox has {} numbers, expected 4", numbers.len()),
                    ));
                };
                super::box_extent(&context, "bbox width", w)?;
                super::box_extent(&context, "bbox height", h)?;
                Some([x, y, x + w, y + h])
            }
            None => None,
        };
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
                let [x0, y0, x1, y1] = bbox.ok_or_else(|| {
                    invalid(&context, "neither a segmentation nor a bbox")
                })?;
                vec![Shape::Rect { x0, y0, x1, y1 }]
            }
        };
        let crowd = match annotation.get("iscrowd") {
            Some(node) => super::whole(&context, "iscrowd", Some(node))? != 0,
            None => false,
        };
        for shape in shapes {
            let mut object = Object::new(class.clone(), shape);
            object.group = Some(group);
            if !matches!(object.shape, Shape::Rect { .. }) {
                object.recorded_box = bbox;
            }
            if crowd {
                object.attributes.insert("iscrowd".into(), "1".into());
            }
            images[index].objects.push(object);
        }
    }
    Ok(LabelFile { images, classes })
}

/// RLE counts, column-major as COCO stores them, from a list or pycocotools' string form.
fn decode_rle(context: &str, rle: &Node, size: ImageSize) -> Result<Mask, LabelError> {
    let counts: Vec<u64> = match rle.get("counts") {
        Some(Node::Text(text)) => decode_counts_string(text).ok_or_else(|| {
            invalid(
                context,
                "segmentation.counts is not pycocotools' compressed form (a run is negative or too long)",
            )
        })?,
        Some(Node::List(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let count = super::whole(context, &format!("counts[{i}]"), Some(item))?;
                u64::try_from(count).map_err(|_| {
                    invalid(context, format!("counts[{i}] is {count}: a run cannot be negative"))
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid(context, "segmentation.counts is missing")),
    };
    if let Some(declared) = rle.get("size") {
        let declared = super::numbers(context, "segmentation.size", Some(declared))?;
        if declared[..] != [size.height as f64, size.width as f64] {
            return Err(invalid(
                context,
                format!(
                    "segmentation.size is {declared:?}, the image is [{}, {}] (height, width)",
                    size.height, size.width
                ),
            ));
        }
    }
    let (width, height) = (size.width as usize, size.height as usize);
    let pixels = width as u64 * height as u64;
    let total = counts.iter().try_fold(0u64, |sum, c| sum.checked_add(*c));
    if total != Some(pixels) {
        let covered = total.map_or("more than 2^64".to_string(), |t| t.to_string());
        return Err(invalid(
            context,
            format!("RLE covers {covered} pixels, the image has {pixels}"),
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
fn decode_counts_string(text: &str) -> Option<Vec<u64>> {
    let bytes = text.as_bytes();
    let mut counts: Vec<i64> = Vec::new();
    let mut p = 0;
    while p < bytes.len() {
        let (mut x, mut k, mut more) = (0i64, 0, true);
        while more && p < bytes.len() {
            // Twelve 5-bit groups already fill 60 bits: no count of a real mask needs more.
            if k == 12 {
                return None;
            }
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
            x = x.checked_add(counts[counts.len() - 2])?;
        }
        counts.push(x);
    }
    counts.into_iter().map(|c| u64::try_from(c).ok()).collect()
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

/// The pixels of every part, as one mask over the image (an instance with a mask part is
/// written as one RLE).
fn union_mask(parts: &[&Object], size: ImageSize) -> Mask {
    let mut raster = super::rasterize::Raster::<bool>::new(size.width, size.height);
    for part in parts {
        raster.paint(&part.shape, true);
    }
    Mask {
        x: 0,
        y: 0,
        width: size.width,
        height: size.height,
        bits: raster.pixels,
    }
}

/// Writes one COCO instances file for `images`, an annotation per instance (the parts of a
/// multi-part object together, its recorded box kept). Image and annotation ids count from
/// 1 (pycocotools takes an annotation id of 0 for "unmatched"); category ids are the class
/// map's, which keeps a COCO file's own ids. Area shapes become polygons, an instance with a
/// mask part one RLE; lines and points are skipped and counted.
pub fn write(images: &[ImageLabels], classes: &ClassMap) -> Result<(String, usize), LabelError> {
    let mut annotations = Vec::new();
    let mut image_entries = Vec::new();
    let mut skipped = 0;
    for (index, labels) in images.iter().enumerate() {
        let image_id = index + 1;
        let size = labels.size.ok_or_else(|| LabelError::NoSize {
            context: labels.image.clone(),
            why: "COCO records it",
        })?;
        image_entries.push(json!({"id": image_id, "file_name": labels.image, "width": size.width, "height": size.height}));
        for (number, instance) in labels.instances().into_iter().enumerate() {
            let category =
                classes
                    .resolve(instance.class)
                    .ok_or_else(|| LabelError::UnknownClass {
                        context: format!("{}: object {}", labels.image, number + 1),
                        class: instance.class.to_string(),
                    })?;
            let areas: Vec<&Object> = instance
                .parts
                .iter()
                .copied()
                .filter(|part| {
                    matches!(part.shape, Shape::Mask(_)) || part.shape.to_polygon().is_some()
                })
                .collect();
            skipped += instance.parts.len() - areas.len();
            if areas.is_empty() {
                continue;
            }
            let (segmentation, area) = if areas.iter().any(|p| matches!(p.shape, Shape::Mask(_))) {
                let mask = union_mask(&areas, size);
                let area = mask.bits.iter().filter(|b| **b).count() as f64;
                (
                    json!({"counts": encode_rle(&mask, size), "size": [size.height, size.width]}),
                    area,
                )
            } else {
                let polygons: Vec<Vec<[f64; 2]>> =
                    areas.iter().filter_map(|p| p.shape.to_polygon()).collect();
                let flat: Vec<Vec<Value>> = polygons
                    .iter()
                    .map(|points| {
                        points
                            .iter()
                            .flat_map(|p| p.map(super::json_coordinate))
                            .collect()
                    })
                    .collect();
                (json!(flat), polygons.iter().map(|p| polygon_area(p)).sum())
            };
            let [x0, y0, x1, y1] = instance.bbox();
            let bbox = [x0, y0, x1 - x0, y1 - y0].map(super::json_coordinate);
            annotations.push(json!({
                "id": annotations.len() + 1,
                "image_id": image_id,
                "category_id": category,
                "segmentation": segmentation,
                "area": super::json_coordinate(area),
                "bbox": bbox,
                "iscrowd": u8::from(instance.crowd()),
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
        let images = read("c.json", text).unwrap().images;
        let objects = &images[0].objects;
        assert_eq!(objects.len(), 4);
        assert_eq!((objects[0].group, objects[1].group), (Some(1), Some(1)));
        let instances = images[0].instances();
        assert_eq!(instances.len(), 3, "one object per annotation");
        assert_eq!(instances[0].parts.len(), 2);
        assert_eq!(
            instances[0].bbox(),
            [0.0, 0.0, 3.0, 2.0],
            "the annotation's bbox"
        );
        assert!(instances[2].crowd());
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
    fn a_masks_box_covers_its_last_pixel_as_pycocotools_counts_it() {
        let mask = Mask {
            x: 417,
            y: 305,
            width: 100,
            height: 100,
            bits: vec![true; 100 * 100],
        };
        let mut labels = ImageLabels::new("m.jpg", Some(size(600, 500)));
        labels
            .objects
            .push(Object::new("crater", Shape::Mask(mask)));
        let (text, _) = write(std::slice::from_ref(&labels), &ClassMap::mars()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["annotations"][0]["bbox"], json!([417, 305, 100, 100]));
        assert_eq!(value["annotations"][0]["area"], 10000.0);
    }

    #[test]
    fn hostile_numbers_are_refused_with_the_entry_named() {
        let file = |images: &str, annotations: &str| {
            format!(
                r#"{{"images":{images},"categories":[{{"id":1,"name":"crater"}}],"annotations":{annotations}}}"#
            )
        };
        let image = r#"[{"id":1,"file_name":"a.jpg","width":4,"height":3}]"#;
        let err = |text: String| read("h.json", &text).unwrap_err().to_string();
        assert_eq!(
            err(file(
                r#"[{"id":1,"file_name":"a.jpg","width":-4,"height":3}]"#,
                "[]"
            )),
            "h.json: image 1: width: expected a size of at least 1 pixel, found -4"
        );
        assert_eq!(
            err(file(
                r#"[{"id":1.5,"file_name":"a.jpg","width":4,"height":3}]"#,
                "[]"
            )),
            "h.json: image 1: id: expected a whole number, found 1.5"
        );
        assert_eq!(
            err(file(
                image,
                r#"[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,"2"]}]"#
            )),
            "h.json: annotation 1: bbox[3]: expected a number, found the string \"2\""
        );
        assert_eq!(
            err(file(
                image,
                r#"[{"id":1,"image_id":1,"category_id":1,"segmentation":{"counts":[9007199254740992,1],"size":[3,4]}}]"#
            )),
            "h.json: annotation 1: RLE covers 9007199254740993 pixels, the image has 12"
        );
        assert_eq!(
            err(file(image, r#"[{"id":1,"image_id":1,"category_id":1,"segmentation":{"counts":"oooooooooooooooooooooo","size":[3,4]}}]"#)),
            "h.json: annotation 1: segmentation.counts is not pycocotools' compressed form (a run is negative or too long)"
        );
        assert_eq!(
            err(file(image, r#"[{"id":1,"image_id":1,"category_id":1,"segmentation":{"counts":[12],"size":[4,3]}}]"#)),
            "h.json: annotation 1: segmentation.size is [4.0, 3.0], the image is [3, 4] (height, width)"
        );
    }

    #[test]
    fn compressed_counts_decode_as_pycocotools_does() {
        // Small counts are one character each: the count plus 48.
        assert_eq!(decode_counts_string("426"), Some(vec![4, 2, 6]));
        // 100 = 4 + 3 * 32: the low group with the continuation bit (4 + 32 + 48 = 'T'),
        // then 3 + 48 = '3'.
        assert_eq!(decode_counts_string("T3"), Some(vec![100]));
        // From the fourth count on, each is stored as a difference from the count two before:
        // [5, 1, 5, 2] is written 5, 1, 5, then 2 - 1 = 1.
        assert_eq!(decode_counts_string("5151"), Some(vec![5, 1, 5, 2]));
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
        let back = read("b.json", &text).unwrap().images;
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

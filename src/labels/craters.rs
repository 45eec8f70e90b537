//! Crater lists: `x,y,diameter` in pixels (PyCDA), or geographic lists such as
//! `Diameter (km),Latitude,Longitude` (craterpy), which need a map projection before they can
//! label an image.

use super::{invalid, ImageLabels, ImageSize, LabelError, Object, Shape};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Crater {
    /// Centre and diameter in pixels of the labelled image.
    Pixels { x: f64, y: f64, diameter: f64 },
    /// Centre in degrees (planetocentric latitude, longitude east) and diameter in km.
    Geographic {
        lat: f64,
        lon: f64,
        diameter_km: f64,
    },
}

/// Reads a crater CSV; the header decides which kind it is.
pub fn read(source: &str, text: &str) -> Result<Vec<Crater>, LabelError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let columns: Vec<String> = header
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| {
        columns
            .iter()
            .position(|c| names.iter().any(|n| c.starts_with(n)))
    };
    let pixel = (find(&["x"]), find(&["y"]), find(&["diameter", "d"]));
    let geographic = (
        find(&["lat"]),
        find(&["lon"]),
        find(&["diameter (km)", "diameter_km", "diameter"]),
    );
    let kind = match (pixel, geographic) {
        ((Some(x), Some(y), Some(d)), _) => (x, y, d, true),
        (_, (Some(lat), Some(lon), Some(d))) => (lat, lon, d, false),
        _ => {
            return Err(invalid(
                source,
                format!("header {header:?}: expected x,y,diameter (pixels) or latitude,longitude,diameter (km)"),
            ))
        }
    };
    let (a, b, d, pixels) = kind;
    lines
        .map(|(number, line)| {
            let context = format!("{source}: line {}", number + 1);
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let value = |i: usize, name: &str| -> Result<f64, LabelError> {
                let text = fields.get(i).copied().unwrap_or("");
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        invalid(
                            &context,
                            format!("{name}: expected a number, found {text:?}"),
                        )
                    })
            };
            let diameter = value(d, "diameter")?;
            if diameter <= 0.0 {
                return Err(invalid(
                    &context,
                    format!("diameter {diameter} is not positive"),
                ));
            }
            Ok(if pixels {
                Crater::Pixels {
                    x: value(a, "x")?,
                    y: value(b, "y")?,
                    diameter,
                }
            } else {
                Crater::Geographic {
                    lat: value(a, "latitude")?,
                    lon: value(b, "longitude")?,
                    diameter_km: diameter,
                }
            })
        })
        .collect()
}

/// Pixel craters as circles of class `crater` on `image`.
pub fn to_labels(
    source: &str,
    craters: &[Crater],
    image: &str,
    size: Option<ImageSize>,
) -> Result<ImageLabels, LabelError> {
    let mut labels = ImageLabels::new(image, size);
    for crater in craters {
        match *crater {
            Crater::Pixels { x, y, diameter } => labels
                .objects
                .push(Object::new("crater", Shape::Circle { cx: x, cy: y, r: diameter / 2.0 })),
            Crater::Geographic { .. } => {
                return Err(invalid(
                    source,
                    "a geographic crater list (degrees, km) needs the image's map projection to become pixel labels",
                ))
            }
        }
    }
    Ok(labels)
}

/// Circles as `x,y,diameter`; other shapes are skipped and counted.
pub fn write(labels: &ImageLabels) -> (String, usize) {
    let mut out = String::from("x,y,diameter\n");
    let mut skipped = 0;
    for object in &labels.objects {
        match object.shape {
            Shape::Circle { cx, cy, r } => out += &format!("{cx},{cy},{}\n", r * 2.0),
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_lists_become_circles_and_back() {
        let text = "x,y,diameter\n1621.9,716.86,4.3318\n171.63,567.58,4.8\n";
        let craters = read("c.csv", text).unwrap();
        assert_eq!(
            craters[0],
            Crater::Pixels {
                x: 1621.9,
                y: 716.86,
                diameter: 4.3318
            }
        );
        let labels = to_labels("c.csv", &craters, "tile.png", None).unwrap();
        assert_eq!(
            labels.objects[1].shape,
            Shape::Circle {
                cx: 171.63,
                cy: 567.58,
                r: 2.4
            }
        );
        assert_eq!(write(&labels), (text.to_string(), 0));
    }

    #[test]
    fn geographic_lists_read_but_need_a_projection() {
        let text = "Diameter (km),Latitude,Longitude\n2300.00,-42.40,70.50\n";
        let craters = read("g.csv", text).unwrap();
        assert_eq!(
            craters,
            [Crater::Geographic {
                lat: -42.4,
                lon: 70.5,
                diameter_km: 2300.0
            }]
        );
        assert!(to_labels("g.csv", &craters, "x.png", None)
            .unwrap_err()
            .to_string()
            .contains("map projection"));
    }

    #[test]
    fn bad_rows_are_named() {
        let err = read("c.csv", "x,y,diameter\n1,2,3\n4,five,6\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.csv: line 3: y: expected a number, found \"five\""
        );
        let err = read("c.csv", "x,y,diameter\n1,2,-3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "c.csv: line 2: diameter -3 is not positive"
        );
        assert!(read("c.csv", "a,b\n1,2\n")
            .unwrap_err()
            .to_string()
            .contains("expected x,y,diameter"));
    }
}

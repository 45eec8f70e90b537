//! Longitude/latitude boxes on Mars: longitudes 0-360 east, boxes that cross the 0/360 meridian.
//!
//! A box whose western edge is east of its eastern edge (`west > east`) wraps through 0/360,
//! which is how ODE describes footprints that straddle the prime meridian.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A closed box on the planet: `west..=east` in degrees east (wrapping when `west > east`),
/// `south..=north` in degrees of planetocentric latitude.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LonLatBox {
    pub west: f64,
    pub east: f64,
    pub south: f64,
    pub north: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BoxError {
    #[error("expected four numbers W,E,S,N, got {0:?}")]
    Shape(String),
    #[error("{name} = {value} is not a number")]
    NotANumber { name: &'static str, value: String },
    #[error("{name} = {value} is outside {min}..={max}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("south ({south}) is north of north ({north})")]
    Inverted { south: f64, north: f64 },
}

impl LonLatBox {
    /// Builds a box, normalising longitudes given as -180..0 into 180..360.
    pub fn new(west: f64, east: f64, south: f64, north: f64) -> Result<Self, BoxError> {
        let west = normalise_longitude("west", west)?;
        let east = normalise_longitude("east", east)?;
        let south = check_range("south", south, -90.0, 90.0)?;
        let north = check_range("north", north, -90.0, 90.0)?;
        if south > north {
            return Err(BoxError::Inverted { south, north });
        }
        Ok(Self {
            west,
            east,
            south,
            north,
        })
    }

    /// True when the box crosses the 0/360 meridian.
    pub fn wraps(&self) -> bool {
        self.west > self.east
    }

    /// Width in degrees of longitude, 0..=360.
    pub fn lon_span(&self) -> f64 {
        if self.wraps() {
            360.0 - self.west + self.east
        } else {
            self.east - self.west
        }
    }

    pub fn lat_span(&self) -> f64 {
        self.north - self.south
    }

    /// The box as one or two non-wrapping longitude intervals.
    pub fn lon_intervals(&self) -> impl Iterator<Item = (f64, f64)> {
        let (first, second) = if self.wraps() {
            ((self.west, 360.0), Some((0.0, self.east)))
        } else {
            ((self.west, self.east), None)
        };
        std::iter::once(first).chain(second)
    }

    /// Closed-interval intersection, meridian-aware.
    pub fn intersects(&self, other: &LonLatBox) -> bool {
        if self.south > other.north || other.south > self.north {
            return false;
        }
        self.lon_intervals()
            .any(|(a0, a1)| other.lon_intervals().any(|(b0, b1)| a0 <= b1 && b0 <= a1))
    }
}

impl std::str::FromStr for LonLatBox {
    type Err = BoxError;

    /// Parses `W,E,S,N` as the CLI's `--bbox` takes it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        let [w, e, s, n] = parts[..] else {
            return Err(BoxError::Shape(text.to_string()));
        };
        let number = |name: &'static str, value: &str| {
            value.parse::<f64>().map_err(|_| BoxError::NotANumber {
                name,
                value: value.to_string(),
            })
        };
        Self::new(
            number("west", w)?,
            number("east", e)?,
            number("south", s)?,
            number("north", n)?,
        )
    }
}

impl fmt::Display for LonLatBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{}",
            self.west, self.east, self.south, self.north
        )
    }
}

fn check_range(name: &'static str, value: f64, min: f64, max: f64) -> Result<f64, BoxError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(BoxError::OutOfRange {
            name,
            value,
            min,
            max,
        })
    }
}

/// Longitudes are 0-360 east; values written as -180..0 are folded into 180..360.
pub fn normalise_longitude(name: &'static str, value: f64) -> Result<f64, BoxError> {
    let value = check_range(name, value, -180.0, 360.0)?;
    Ok(if value < 0.0 { value + 360.0 } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(w: f64, e: f64, s: f64, n: f64) -> LonLatBox {
        LonLatBox::new(w, e, s, n).unwrap()
    }

    #[test]
    fn plain_boxes_intersect_only_when_both_axes_overlap() {
        let a = b(10.0, 20.0, -5.0, 5.0);
        assert!(a.intersects(&b(19.0, 30.0, 4.0, 10.0)));
        assert!(a.intersects(&b(20.0, 30.0, 5.0, 10.0)), "edges touch");
        assert!(!a.intersects(&b(21.0, 30.0, -5.0, 5.0)));
        assert!(!a.intersects(&b(10.0, 20.0, 6.0, 10.0)));
    }

    #[test]
    fn boxes_crossing_the_meridian_meet_boxes_on_either_side() {
        let across = b(359.5, 0.5, -0.5, 0.5);
        assert!(across.wraps());
        assert_eq!(across.lon_span(), 1.0);
        assert!(across.intersects(&b(359.97, 0.044, -0.239, 0.214)));
        assert!(across.intersects(&b(359.863, 359.978, 0.0, 0.2)));
        assert!(across.intersects(&b(0.1, 0.2, 0.0, 0.2)));
        assert!(!across.intersects(&b(1.0, 359.0, 0.0, 0.2)));
        assert!(!across.intersects(&b(180.0, 181.0, 0.0, 0.2)));
    }

    #[test]
    fn negative_longitudes_fold_into_0_360() {
        let a = b(-10.0, 10.0, 0.0, 1.0);
        assert_eq!((a.west, a.east), (350.0, 10.0));
        assert!(a.wraps());
        assert_eq!(a.lon_span(), 20.0);
    }

    #[test]
    fn parsing_names_what_was_wrong() {
        assert_eq!(
            "1,2,3".parse::<LonLatBox>(),
            Err(BoxError::Shape("1,2,3".into()))
        );
        assert!(matches!(
            "1,2,x,4".parse::<LonLatBox>(),
            Err(BoxError::NotANumber { name: "south", .. })
        ));
        assert!(matches!(
            "1,2,3,91".parse::<LonLatBox>(),
            Err(BoxError::OutOfRange { name: "north", .. })
        ));
        assert!(matches!(
            "1,400,3,4".parse::<LonLatBox>(),
            Err(BoxError::OutOfRange { name: "east", .. })
        ));
        assert!(matches!(
            "1,2,5,4".parse::<LonLatBox>(),
            Err(BoxError::Inverted { .. })
        ));
        assert_eq!(
            " 359.5, 0.5 ,-0.5,0.5".parse(),
            Ok(b(359.5, 0.5, -0.5, 0.5))
        );
    }
}

//! ODE product queries, built and validated before anything is sent.

use crate::geo::LonLatBox;
use crate::product::UtcTime;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which products a query names: ODE needs one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Selector {
    /// Instrument host, instrument and product type, e.g. MRO / HIRISE / RDRV11.
    Instrument {
        host: String,
        instrument: String,
        product_type: String,
    },
    /// A PDS product id; `*` is a wildcard.
    PdsId(String),
    /// ODE's own numeric product id.
    OdeId(u64),
}

/// How ODE matches a box: by footprint (`loc=f`) or by the observation's centre point
/// (`loc=o`).
/// The spacecraft (ODE's instrument host) that carries a Mars instrument.
pub fn host_of(instrument: &str) -> Option<&'static str> {
    match instrument.to_ascii_uppercase().as_str() {
        "HIRISE" | "CTX" | "CRISM" | "MARCI" | "SHARAD" => Some("MRO"),
        "HRSC" | "OMEGA" => Some("MEX"),
        "THEMIS" => Some("ODY"),
        "MOC" | "MOLA" => Some("MGS"),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    Footprint,
    Center,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    Json,
    Xml,
}

/// An angle limit in degrees, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AngleRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A `query=product` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OdeQuery {
    pub selector: Selector,
    pub target: String,
    pub bbox: Option<LonLatBox>,
    pub location: Option<Location>,
    pub observed_after: Option<UtcTime>,
    pub observed_before: Option<UtcTime>,
    pub incidence: AngleRange,
    pub emission: AngleRange,
    pub phase: AngleRange,
    /// ODE's `results` letters: c count, p ids, m metadata, f files, b browse, t thumbnail,
    /// l label, x footprint.
    pub results: String,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("{field} is empty")]
    Empty { field: &'static str },
    #[error("{field} = {value:?} may only contain letters, digits, '_', '-', '.' and '*'")]
    BadText { field: &'static str, value: String },
    #[error("{field} = {value} is outside {min}..={max} degrees")]
    Angle {
        field: &'static str,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("{field}: minimum {min} is above maximum {max}")]
    Inverted {
        field: &'static str,
        min: f64,
        max: f64,
    },
    #[error("observed-after {after} is later than observed-before {before}")]
    Times { after: UtcTime, before: UtcTime },
    #[error("results {0:?}: ODE knows only the letters c, p, m, f, b, t, l, x")]
    Results(String),
}

impl OdeQuery {
    pub fn new(selector: Selector) -> Self {
        OdeQuery {
            selector,
            target: "mars".into(),
            bbox: None,
            location: None,
            observed_after: None,
            observed_before: None,
            incidence: AngleRange::default(),
            emission: AngleRange::default(),
            phase: AngleRange::default(),
            // As in the replies seen from the live service: files, metadata, product ids.
            results: "fmp".into(),
            output: Output::Json,
        }
    }

    /// The query's parameters, checked: ids are plain, angles in range, limits ordered.
    /// `results`, `limit` and `offset` are the caller's (the client pages and counts).
    pub fn params(&self) -> Result<Vec<(&'static str, String)>, QueryError> {
        let mut params = vec![("query", "product".to_string())];
        match &self.selector {
            Selector::Instrument {
                host,
                instrument,
                product_type,
            } => {
                params.push(("ihid", plain("ihid", host, false)?));
                params.push(("iid", plain("iid", instrument, false)?));
                params.push(("pt", plain("pt", product_type, false)?));
            }
            Selector::PdsId(pattern) => params.push(("pdsid", plain("pdsid", pattern, true)?)),
            Selector::OdeId(id) => params.push(("odeid", id.to_string())),
        }
        params.push(("target", plain("target", &self.target, false)?));
        if let Some(bbox) = &self.bbox {
            // LonLatBox has already checked ranges and that south <= north.
            params.push(("westernlon", bbox.west.to_string()));
            params.push(("easternlon", bbox.east.to_string()));
            params.push(("minlat", bbox.south.to_string()));
            params.push(("maxlat", bbox.north.to_string()));
        }
        if let Some(location) = self.location {
            let letter = match location {
                Location::Footprint => "f",
                Location::Center => "o",
            };
            params.push(("loc", letter.into()));
        }
        if let (Some(after), Some(before)) = (self.observed_after, self.observed_before) {
            if after > before {
                return Err(QueryError::Times { after, before });
            }
        }
        let ode_time = |t: UtcTime| t.0.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
        if let Some(after) = self.observed_after {
            params.push(("minobtime", ode_time(after)));
        }
        if let Some(before) = self.observed_before {
            params.push(("maxobtime", ode_time(before)));
        }
        for (name, range, lo, hi, max) in [
            (
                "incidence",
                self.incidence,
                "mininangle",
                "maxinangle",
                180.0,
            ),
            ("emission", self.emission, "minemangle", "maxemangle", 90.0),
            ("phase", self.phase, "minphangle", "maxphangle", 180.0),
        ] {
            for (key, value) in [(lo, range.min), (hi, range.max)] {
                if let Some(value) = value {
                    if !(0.0..=max).contains(&value) {
                        return Err(QueryError::Angle {
                            field: key,
                            value,
                            min: 0.0,
                            max,
                        });
                    }
                    params.push((key, value.to_string()));
                }
            }
            if let (Some(min), Some(max)) = (range.min, range.max) {
                if min > max {
                    return Err(QueryError::Inverted {
                        field: name,
                        min,
                        max,
                    });
                }
            }
        }
        check_results(&self.results)?;
        params.push(("output", self.output.to_string()));
        Ok(params)
    }
}

pub fn check_results(results: &str) -> Result<(), QueryError> {
    if results.is_empty()
        || !results
            .chars()
            .all(|c| "cpmfbtlx".contains(c.to_ascii_lowercase()))
    {
        return Err(QueryError::Results(results.to_string()));
    }
    Ok(())
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Output::Json => "JSON",
            Output::Xml => "XML",
        })
    }
}

fn plain(field: &'static str, value: &str, wildcards: bool) -> Result<String, QueryError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(QueryError::Empty { field });
    }
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c) || (wildcards && c == '*');
    if !value.chars().all(allowed) {
        return Err(QueryError::BadText {
            field,
            value: value.to_string(),
        });
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hirise() -> OdeQuery {
        OdeQuery::new(Selector::Instrument {
            host: "MRO".into(),
            instrument: "HIRISE".into(),
            product_type: "RDRV11".into(),
        })
    }

    fn value<'a>(params: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_fixture_search_is_written_as_ode_expects() {
        let mut query = hirise();
        query.bbox = Some("359.5,0.5,-0.5,0.5".parse().unwrap());
        query.location = Some(Location::Footprint);
        let params = query.params().unwrap();
        for (key, expected) in [
            ("query", "product"),
            ("ihid", "MRO"),
            ("iid", "HIRISE"),
            ("pt", "RDRV11"),
            ("target", "mars"),
            ("westernlon", "359.5"),
            ("easternlon", "0.5"),
            ("minlat", "-0.5"),
            ("maxlat", "0.5"),
            ("loc", "f"),
            ("output", "JSON"),
        ] {
            assert_eq!(value(&params, key), Some(expected), "{key}");
        }
    }

    #[test]
    fn limits_are_checked_before_sending() {
        let mut query = hirise();
        query.incidence = AngleRange {
            min: Some(10.0),
            max: Some(5.0),
        };
        assert!(matches!(
            query.params(),
            Err(QueryError::Inverted {
                field: "incidence",
                ..
            })
        ));
        query.incidence = AngleRange {
            min: None,
            max: Some(200.0),
        };
        assert!(matches!(
            query.params(),
            Err(QueryError::Angle {
                field: "maxinangle",
                ..
            })
        ));
        let mut query = OdeQuery::new(Selector::PdsId("ESP_0164*_RED".into()));
        assert_eq!(
            value(&query.params().unwrap(), "pdsid"),
            Some("ESP_0164*_RED")
        );
        query.selector = Selector::PdsId("x&results=c".into());
        assert!(matches!(
            query.params(),
            Err(QueryError::BadText { field: "pdsid", .. })
        ));
        query.selector = Selector::PdsId(" ".into());
        assert!(matches!(
            query.params(),
            Err(QueryError::Empty { field: "pdsid" })
        ));
        let mut query = hirise();
        query.observed_after = UtcTime::parse("2012-01-01");
        query.observed_before = UtcTime::parse("2010-01-01");
        assert!(matches!(query.params(), Err(QueryError::Times { .. })));
        query.observed_before = None;
        assert_eq!(
            value(&query.params().unwrap(), "minobtime"),
            Some("2012-01-01T00:00:00.000")
        );
        query.results = "mfz".into();
        assert!(matches!(query.params(), Err(QueryError::Results(_))));
    }
}

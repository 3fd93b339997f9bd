//! Units of measure: the `unit` of a field, which reads a quantity such as "1.24 kg" and
//! gives it as a number in the field's unit (`unit = "g"`: 1240).
//!
//! Three kinds of quantity are known: mass (base gram), length (base metre) and volume (base
//! litre), each unit with its symbol and a few spellings ([`UNITS`]). Reading a value takes
//! the first number followed by a unit **of the same kind** as the field's (so "2 x 500 g"
//! read as grams is 500, and "10 cm, 95 g" is 95); a number is written as for
//! `as = "number"` (commas are thousands separators, the point is the decimal mark).

use std::sync::LazyLock;

use regex::Regex;
use serde::de::{self, Deserialize, Deserializer};

/// What a unit measures; only units of one kind convert into each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    /// Mass (base: gram).
    Mass,
    /// Length (base: metre).
    Length,
    /// Volume (base: litre).
    Volume,
}

/// A unit of measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Unit {
    /// The symbol, as `unit = "..."` names it: `g`, `kg`, `lb`, `cm`, `ml`, ...
    pub symbol: &'static str,
    /// What it measures.
    pub dimension: Dimension,
    /// How many base units (g, m, l) one of it is.
    pub factor: f64,
    /// Other spellings found on pages (lower case), such as `kilogram` or `lbs`.
    pub aliases: &'static [&'static str],
}

/// Every known unit.
pub const UNITS: &[Unit] = &[
    unit("mg", Dimension::Mass, 0.001, &["milligram", "milligrams"]),
    unit(
        "g",
        Dimension::Mass,
        1.0,
        &["gram", "grams", "gramme", "grammes", "gm", "gms"],
    ),
    unit(
        "kg",
        Dimension::Mass,
        1000.0,
        &[
            "kgs",
            "kilo",
            "kilos",
            "kilogram",
            "kilograms",
            "kilogramme",
            "kilogrammes",
        ],
    ),
    unit("t", Dimension::Mass, 1_000_000.0, &["tonne", "tonnes"]),
    unit("oz", Dimension::Mass, 28.349_523_125, &["ounce", "ounces"]),
    unit(
        "lb",
        Dimension::Mass,
        453.592_37,
        &["lbs", "pound", "pounds"],
    ),
    unit(
        "mm",
        Dimension::Length,
        0.001,
        &["millimeter", "millimeters", "millimetre", "millimetres"],
    ),
    unit(
        "cm",
        Dimension::Length,
        0.01,
        &["centimeter", "centimeters", "centimetre", "centimetres"],
    ),
    unit(
        "m",
        Dimension::Length,
        1.0,
        &["meter", "meters", "metre", "metres"],
    ),
    unit(
        "km",
        Dimension::Length,
        1000.0,
        &["kilometer", "kilometers", "kilometre", "kilometres"],
    ),
    unit("in", Dimension::Length, 0.0254, &["inch", "inches"]),
    unit("ft", Dimension::Length, 0.3048, &["foot", "feet"]),
    unit("yd", Dimension::Length, 0.9144, &["yard", "yards"]),
    unit("mi", Dimension::Length, 1609.344, &["mile", "miles"]),
    unit(
        "ml",
        Dimension::Volume,
        0.001,
        &["milliliter", "milliliters", "millilitre", "millilitres"],
    ),
    unit(
        "cl",
        Dimension::Volume,
        0.01,
        &["centiliter", "centiliters", "centilitre", "centilitres"],
    ),
    unit(
        "dl",
        Dimension::Volume,
        0.1,
        &["deciliter", "deciliters", "decilitre", "decilitres"],
    ),
    unit(
        "l",
        Dimension::Volume,
        1.0,
        &["liter", "liters", "litre", "litres", "ltr"],
    ),
];

const fn unit(
    symbol: &'static str,
    dimension: Dimension,
    factor: f64,
    aliases: &'static [&'static str],
) -> Unit {
    Unit {
        symbol,
        dimension,
        factor,
        aliases,
    }
}

/// A number (optional sign, thousands commas, decimal point), optional spaces, a word.
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([-+]?(?:[0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+))\s*([A-Za-z]+)")
        .expect("a constant pattern, covered by the tests")
});

impl Unit {
    /// The unit a page writes as `word` (any case: `KG`, `Kilograms`), if known.
    pub fn from_word(word: &str) -> Option<Unit> {
        let word = word.to_lowercase();
        UNITS
            .iter()
            .find(|u| u.symbol == word || u.aliases.contains(&word.as_str()))
            .copied()
    }

    /// The first quantity in `text` whose unit is of this unit's kind, in this unit; `None`
    /// when there is none.
    pub fn read(&self, text: &str) -> Option<f64> {
        QUANTITY.captures_iter(text).find_map(|caps| {
            let unit = Unit::from_word(caps.get(2)?.as_str())?;
            if unit.dimension != self.dimension {
                return None;
            }
            let number: f64 = caps.get(1)?.as_str().replace(',', "").parse().ok()?;
            Some(tidy(number * unit.factor / self.factor))
        })
    }
}

/// `x` without the binary noise of the conversion (1.24 kg is 1240 g, not
/// 1240.0000000000002): rounded to nine decimals when that is exact in an f64.
fn tidy(x: f64) -> f64 {
    let scaled = x * 1e9;
    if scaled.abs() < 9.0e15 {
        scaled.round() / 1e9
    } else {
        x
    }
}

/// A unit named in a project file: `unit = "g"`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct UnitName(pub Unit);

impl<'de> Deserialize<'de> for UnitName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Unit::from_word(&name).map(UnitName).ok_or_else(|| {
            let symbols: Vec<&str> = UNITS.iter().map(|u| u.symbol).collect();
            de::Error::custom(format!(
                "unknown unit \"{name}\"; expected one of {}",
                symbols.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grams(text: &str) -> Option<f64> {
        Unit::from_word("g").expect("g").read(text)
    }

    #[test]
    fn masses_convert_to_grams() {
        assert_eq!(grams("1.24 kg"), Some(1240.0));
        assert_eq!(grams("950 g"), Some(950.0));
        assert_eq!(grams("950g"), Some(950.0));
        assert_eq!(grams("2 lb"), Some(907.18474));
        assert_eq!(grams("2 lbs."), Some(907.18474));
        assert_eq!(grams("Weight: 1,240 Grams"), Some(1240.0));
        assert_eq!(grams("0.5 KG"), Some(500.0));
        assert_eq!(grams(".5 kg"), Some(500.0));
        assert_eq!(grams("250 mg"), Some(0.25));
        assert_eq!(grams("1 oz"), Some(28.349523125));
        assert_eq!(grams("1 t"), Some(1_000_000.0));
    }

    #[test]
    fn the_first_quantity_of_the_same_kind_is_taken() {
        assert_eq!(grams("2 x 500 g"), Some(500.0));
        assert_eq!(grams("10 cm, 95 g"), Some(95.0));
        assert_eq!(grams("95 g (3.4 oz)"), Some(95.0));
        assert_eq!(grams("950"), None);
        assert_eq!(grams("heavy"), None);
        assert_eq!(grams("1.2 m"), None);
        assert_eq!(grams(""), None);
    }

    #[test]
    fn lengths_and_volumes_convert_within_their_kind() {
        let cm = Unit::from_word("cm").expect("cm");
        assert_eq!(cm.read("1.5 m"), Some(150.0));
        assert_eq!(cm.read("2 inches"), Some(5.08));
        assert_eq!(cm.read("3 ft"), Some(91.44));
        let ml = Unit::from_word("ml").expect("ml");
        assert_eq!(ml.read("1.5 L"), Some(1500.0));
        assert_eq!(ml.read("33 cl"), Some(330.0));
        let kg = Unit::from_word("kilograms").expect("alias");
        assert_eq!(kg.symbol, "kg");
        assert_eq!(kg.read("950 g"), Some(0.95));
        assert_eq!(kg.read("-1 kg"), Some(-1.0));
    }

    #[test]
    fn unknown_units_are_refused_with_the_known_ones() {
        #[derive(serde::Deserialize, Debug)]
        struct Doc {
            #[allow(dead_code)]
            v: UnitName,
        }
        let doc: Doc = toml::from_str(r#"v = "KG""#).expect("any case");
        assert_eq!(doc.v.0.symbol, "kg");
        let err = toml::from_str::<Doc>(r#"v = "stone""#).expect_err("unknown");
        assert!(err.message().contains("unknown unit \"stone\""), "{err}");
        assert!(err.message().contains("expected one of mg, g, kg"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(4));
    }
}

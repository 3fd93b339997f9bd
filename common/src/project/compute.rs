//! Computed fields: the `expr` of a field, a small arithmetic expression on its value.
//!
//! The language is deliberately tiny and cannot loop: numbers, the variable `value` (the
//! field's number), `+ - * / %`, unary minus, parentheses, and the functions `round(x)`,
//! `round(x, digits)`, `floor(x)`, `ceil(x)`, `abs(x)`, `min(a, b, ...)` and
//! `max(a, b, ...)`. An expression is parsed once, when the project file is read (errors name
//! the character where the parse failed), and evaluation is a walk of a tree whose size and
//! depth are bounded by [`MAX_EXPR_LEN`] and [`MAX_EXPR_DEPTH`], so a field's expression
//! costs at most a few hundred arithmetic steps per value.

use serde::de::{self, Deserialize, Deserializer};

/// Longest expression, in bytes.
pub const MAX_EXPR_LEN: usize = 500;

/// Deepest nesting of parentheses, function calls and unary minus.
pub const MAX_EXPR_DEPTH: usize = 32;

/// A parsed `expr`, such as `round(value * 1000)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    text: String,
    root: Node,
}

/// One node of an expression tree.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Number(f64),
    Value,
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Round,
    Floor,
    Ceil,
    Abs,
    Min,
    Max,
}

impl Func {
    fn named(name: &str) -> Option<Func> {
        Some(match name {
            "round" => Func::Round,
            "floor" => Func::Floor,
            "ceil" => Func::Ceil,
            "abs" => Func::Abs,
            "min" => Func::Min,
            "max" => Func::Max,
            _ => return None,
        })
    }

    /// The numbers of arguments the function takes: (least, most).
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Round => (1, 2),
            Func::Floor | Func::Ceil | Func::Abs => (1, 1),
            Func::Min | Func::Max => (1, usize::MAX),
        }
    }
}

/// Why an expression does not parse: the message and the 1-based character where it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {at}")]
pub struct ExprError {
    /// What was expected.
    pub message: String,
    /// 1-based character position in the expression.
    pub at: usize,
}

impl Expr {
    /// Parses an expression; the error says what was expected and where.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        if text.len() > MAX_EXPR_LEN {
            return Err(ExprError {
                message: format!("expected at most {MAX_EXPR_LEN} bytes"),
                at: MAX_EXPR_LEN,
            });
        }
        let mut parser = Parser {
            chars: text.char_indices().collect(),
            pos: 0,
            depth: 0,
        };
        let root = parser.sum()?;
        parser.skip_space();
        if parser.pos < parser.chars.len() {
            return Err(parser.error("expected an operator (+ - * / %) or the end"));
        }
        Ok(Expr {
            text: text.to_string(),
            root,
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The result for this `value`; `None` when it is not a finite number (a division by
    /// zero, an overflow).
    pub fn eval(&self, value: f64) -> Option<f64> {
        eval(&self.root, value).filter(|x| x.is_finite())
    }
}

fn eval(node: &Node, value: f64) -> Option<f64> {
    let x = match node {
        Node::Number(n) => *n,
        Node::Value => value,
        Node::Neg(inner) => -eval(inner, value)?,
        Node::Binary(op, a, b) => {
            let (a, b) = (eval(a, value)?, eval(b, value)?);
            match op {
                Op::Add => a + b,
                Op::Sub => a - b,
                Op::Mul => a * b,
                Op::Div if b == 0.0 => return None,
                Op::Div => a / b,
                Op::Rem if b == 0.0 => return None,
                Op::Rem => a % b,
            }
        }
        Node::Call(func, args) => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(arg, value)?);
            }
            let first = *values.first()?;
            match func {
                Func::Round => match values.get(1) {
                    None => first.round(),
                    Some(digits) => {
                        // Digits beyond ±15 mean nothing for an f64; clamping keeps 10^d finite.
                        let factor = 10f64.powi(digits.round().clamp(-15.0, 15.0) as i32);
                        (first * factor).round() / factor
                    }
                },
                Func::Floor => first.floor(),
                Func::Ceil => first.ceil(),
                Func::Abs => first.abs(),
                Func::Min => values.iter().copied().fold(first, f64::min),
                Func::Max => values.iter().copied().fold(first, f64::max),
            }
        }
    };
    x.is_finite().then_some(x)
}

/// A recursive-descent parser over the expression's characters.
struct Parser {
    chars: Vec<(usize, char)>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn error(&self, message: &str) -> ExprError {
        ExprError {
            message: message.to_string(),
            at: self.pos + 1,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|(_, c)| *c)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Skips whitespace, then takes `c` if it is next.
    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err(self.error(&format!(
                "expected at most {MAX_EXPR_DEPTH} levels of nesting"
            )));
        }
        Ok(())
    }

    /// `product (('+' | '-') product)*`
    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut left = self.product()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(left);
            };
            let right = self.product()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// `unary (('*' | '/' | '%') unary)*`
    fn product(&mut self) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else if self.eat('%') {
                Op::Rem
            } else {
                return Ok(left);
            };
            let right = self.unary()?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    /// `'-' unary | '+' unary | primary`
    fn unary(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let node = if self.eat('-') {
            Node::Neg(Box::new(self.unary()?))
        } else if self.eat('+') {
            self.unary()?
        } else {
            self.primary()?
        };
        self.depth -= 1;
        Ok(node)
    }

    /// A number, `value`, a call `name(args)` or `( sum )`.
    fn primary(&mut self) -> Result<Node, ExprError> {
        self.skip_space();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let inner = self.sum()?;
                if !self.eat(')') {
                    return Err(self.error("expected `)`"));
                }
                Ok(inner)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '_')
                {
                    self.pos += 1;
                }
                // An exponent: `1e3`, `2.5E-4`.
                if matches!(self.peek(), Some('e' | 'E')) {
                    let save = self.pos;
                    self.pos += 1;
                    if matches!(self.peek(), Some('+' | '-')) {
                        self.pos += 1;
                    }
                    if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                            self.pos += 1;
                        }
                    } else {
                        self.pos = save;
                    }
                }
                let text: String = self.chars[start..self.pos]
                    .iter()
                    .map(|(_, c)| *c)
                    .filter(|c| *c != '_')
                    .collect();
                match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Ok(Node::Number(n)),
                    _ => {
                        self.pos = start;
                        Err(self.error(&format!("invalid number `{text}`")))
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() => {
                while self
                    .peek()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos]
                    .iter()
                    .map(|(_, c)| *c)
                    .collect();
                if name == "value" {
                    return Ok(Node::Value);
                }
                let Some(func) = Func::named(&name) else {
                    self.pos = start;
                    return Err(self.error(&format!(
                        "unknown name `{name}`; expected `value` or a function: round, floor, ceil, abs, min, max"
                    )));
                };
                if !self.eat('(') {
                    return Err(self.error(&format!("expected `(` after `{name}`")));
                }
                self.enter()?;
                let mut args = Vec::new();
                if !self.eat(')') {
                    loop {
                        args.push(self.sum()?);
                        if self.eat(')') {
                            break;
                        }
                        if !self.eat(',') {
                            return Err(self.error("expected `,` or `)`"));
                        }
                    }
                }
                self.depth -= 1;
                let (least, most) = func.arity();
                if args.len() < least || args.len() > most {
                    self.pos = start;
                    let count = match (least, most) {
                        (1, 1) => "one argument".to_string(),
                        (1, 2) => "one or two arguments".to_string(),
                        _ => "at least one argument".to_string(),
                    };
                    return Err(self.error(&format!("`{name}` takes {count}")));
                }
                Ok(Node::Call(func, args))
            }
            Some(_) => Err(self.error("expected a number, `value`, a function or `(`")),
            None => Err(self.error("expected a number, `value`, a function or `(`, found the end")),
        }
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Expr::parse(&text).map_err(|e| {
            de::Error::custom(format!(
                "invalid expression \"{text}\": {e}; expected arithmetic on `value` such as \"value * 1000\" or \"round(value / 100, 2)\""
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(text: &str, value: f64) -> Option<f64> {
        Expr::parse(text).expect(text).eval(value)
    }

    #[test]
    fn arithmetic_follows_the_usual_precedence() {
        assert_eq!(calc("value * 1000", 1.5), Some(1500.0));
        assert_eq!(calc("1 + 2 * 3", 0.0), Some(7.0));
        assert_eq!(calc("(1 + 2) * 3", 0.0), Some(9.0));
        assert_eq!(calc("10 - 4 - 3", 0.0), Some(3.0));
        assert_eq!(calc("100 / 10 / 2", 0.0), Some(5.0));
        assert_eq!(calc("7 % 4", 0.0), Some(3.0));
        assert_eq!(calc("-value + 1", 2.0), Some(-1.0));
        assert_eq!(calc("- -value", 2.0), Some(2.0));
        assert_eq!(calc("2 * -3", 0.0), Some(-6.0));
        assert_eq!(calc("1e3 + 2.5E-1 + 1_000", 0.0), Some(2000.25));
        assert_eq!(calc(" value ", 4.0), Some(4.0));
    }

    #[test]
    fn functions_round_and_clamp() {
        assert_eq!(calc("round(value * 1000)", 1.24), Some(1240.0));
        assert_eq!(calc("round(value, 2)", 1.23456), Some(1.23));
        assert_eq!(calc("round(value, -2)", 1234.0), Some(1200.0));
        assert_eq!(calc("round(2.5)", 0.0), Some(3.0));
        assert_eq!(calc("round(-2.5)", 0.0), Some(-3.0));
        assert_eq!(calc("floor(value)", 2.7), Some(2.0));
        assert_eq!(calc("ceil(value)", 2.1), Some(3.0));
        assert_eq!(calc("abs(value)", -2.0), Some(2.0));
        assert_eq!(calc("min(value, 10, 3)", 5.0), Some(3.0));
        assert_eq!(calc("max(value)", 5.0), Some(5.0));
    }

    #[test]
    fn results_that_are_no_number_are_none() {
        assert_eq!(calc("value / 0", 1.0), None);
        assert_eq!(calc("value % 0", 1.0), None);
        assert_eq!(calc("value * 1e308 * 10", 10.0), None);
    }

    #[test]
    fn errors_say_what_was_expected_and_where() {
        let err = |text: &str| Expr::parse(text).expect_err(text);
        assert_eq!(
            err("value *"),
            ExprError {
                message: "expected a number, `value`, a function or `(`, found the end".into(),
                at: 8
            }
        );
        let e = err("valu * 2");
        assert!(e.message.contains("unknown name `valu`"), "{e}");
        assert_eq!(e.at, 1);
        assert_eq!(err("(value").message, "expected `)`");
        assert_eq!(err("value 2").at, 7);
        assert!(err("round()").message.contains("one or two arguments"));
        assert!(err("abs(1, 2)").message.contains("one argument"));
        assert!(err("round 2").message.contains("expected `(`"));
        assert!(err("1..2").message.contains("invalid number"));
        assert!(err("value ^ 2").message.contains("expected an operator"));
        assert!(err("").message.contains("found the end"));
    }

    #[test]
    fn size_and_nesting_are_bounded() {
        let deep = format!("{}value{}", "(".repeat(40), ")".repeat(40));
        assert!(err_of(&deep).contains("levels of nesting"));
        let negs = format!("{}value", "-".repeat(40));
        assert!(err_of(&negs).contains("levels of nesting"));
        let long = format!("value{}", " + 1".repeat(200));
        assert!(err_of(&long).contains("at most 500 bytes"));
        // Long flat sums are fine: depth counts nesting, not length.
        let flat = format!("value{}", " + 1".repeat(100));
        assert_eq!(calc(&flat, 0.0), Some(100.0));
    }

    fn err_of(text: &str) -> String {
        Expr::parse(text).expect_err(text).message
    }

    #[test]
    fn a_bad_expression_in_a_file_is_refused_at_its_value() {
        #[derive(serde::Deserialize, Debug)]
        struct Doc {
            #[allow(dead_code)]
            v: Expr,
        }
        let err = toml::from_str::<Doc>(r#"v = "value * x""#).expect_err("bad");
        assert!(
            err.message().contains("invalid expression \"value * x\""),
            "{err}"
        );
        assert!(err.message().contains("at character 9"), "{err}");
        assert_eq!(err.span().map(|s| s.start), Some(4));
    }
}

//! The validator: generic checks called by the generated glue, collecting errors with the field's JSON path.

use iot_model::WireEnum;

use crate::error::ValidationError;
use crate::generated::ErrorCode;

/// Implemented (by generated code) for every structure a request body can reach.
pub trait Validate {
    /// Records every rule this value breaks.
    fn validate(&self, v: &mut Validator);
}

/// Collects rule violations; the first one in field order is reported.
#[derive(Debug, Default)]
pub struct Validator {
    prefix: Vec<String>,
    errors: Vec<ValidationError>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    fn path(&self, field: &str) -> String {
        let mut p = String::new();
        for seg in &self.prefix {
            if !p.is_empty() && !seg.starts_with('[') {
                p.push('.');
            }
            p.push_str(seg);
        }
        if !field.is_empty() {
            if !p.is_empty() && !field.starts_with('[') {
                p.push('.');
            }
            p.push_str(field);
        }
        p
    }

    /// Records a violation of `rule` by `field`, with the platform's code for it if any.
    pub fn fail(&mut self, field: &str, rule: impl Into<String>, code: Option<ErrorCode>) {
        let path = self.path(field);
        self.errors.push(ValidationError { field: path, rule: rule.into(), code });
    }

    /// Checks a string's length in characters.
    pub fn len(&mut self, field: &str, value: &str, min: Option<usize>, max: Option<usize>, code: Option<ErrorCode>) {
        let n = value.chars().count();
        if let Some(min) = min
            && n < min
        {
            let rule =
                if min == 1 { "must not be empty".to_owned() } else { format!("must be at least {min} characters") };
            self.fail(field, rule, code);
            return;
        }
        if let Some(max) = max
            && n > max
        {
            self.fail(field, format!("must be at most {max} characters (got {n})"), code);
        }
    }

    /// Checks each string of a list.
    pub fn each_len<'a>(
        &mut self,
        field: &str,
        values: impl Iterator<Item = &'a str>,
        min: Option<usize>,
        max: Option<usize>,
        code: Option<ErrorCode>,
    ) {
        for (i, s) in values.enumerate() {
            self.len(&format!("{field}[{i}]"), s, min, max, code.clone());
        }
    }

    /// Checks a number against an inclusive range.
    pub fn range(&mut self, field: &str, value: u64, min: Option<u64>, max: Option<u64>, code: Option<ErrorCode>) {
        let lo = min.unwrap_or(0);
        let hi = max.unwrap_or(u64::MAX);
        if value < lo || value > hi {
            let rule = match (min, max) {
                (Some(a), Some(b)) => format!("must be in {a}..={b} (got {value})"),
                (Some(a), None) => format!("must be at least {a} (got {value})"),
                _ => format!("must be at most {hi} (got {value})"),
            };
            self.fail(field, rule, code);
        }
    }

    /// Checks a list's length.
    pub fn items(&mut self, field: &str, len: usize, max: usize, code: Option<ErrorCode>) {
        if len > max {
            self.fail(field, format!("must have at most {max} entries (got {len})"), code);
        }
    }

    /// Checks a wire enum is a known value (an unknown one cannot be sent).
    pub fn known<E: WireEnum>(&mut self, field: &str, value: &E, code: Option<ErrorCode>) {
        if value.is_unknown() {
            let known: Vec<&str> = E::TABLE.iter().map(|(w, _)| *w).collect();
            self.fail(field, format!("must be one of {}", known.join(", ")), code);
        }
    }

    /// Validates a nested structure under `field`.
    pub fn nested<T: Validate>(&mut self, field: &str, value: &T) {
        self.prefix.push(field.to_owned());
        value.validate(self);
        self.prefix.pop();
    }

    /// Validates each structure of a list under `field[i]`.
    pub fn nested_each<T: Validate>(&mut self, field: &str, values: &[T]) {
        for (i, value) in values.iter().enumerate() {
            self.nested(&format!("{field}[{i}]"), value);
        }
    }

    /// Every violation found so far.
    pub fn errors(&self) -> &[ValidationError] {
        &self.errors
    }

    /// The first violation, if any.
    pub fn finish(self) -> Result<(), ValidationError> {
        match self.errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

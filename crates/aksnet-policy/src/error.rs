//! Errors: every one names the object, the field path (as `kubectl explain` spells it) and the
//! offending value.

/// One invalid field of one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {field}: {reason} (value {value:?})")]
pub struct FieldError {
    /// `NetworkPolicy x/allow-a`, `Pod x/a`, `step 2 "update"`…
    pub object: String,
    /// `spec.ingress[0].from[1].ipBlock.except[0]`.
    pub field: String,
    pub value: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(
        object: impl Into<String>,
        field: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> FieldError {
        FieldError {
            object: object.into(),
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }
}

/// Errors of reading a probe file or a manifest.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{file}: cannot parse: {detail}")]
    Parse { file: String, detail: String },
    #[error("{file}: {error}")]
    Field { file: String, error: FieldError },
    #[error("{file}: {} invalid fields:\n  {}", .errors.len(), list(.errors))]
    Fields {
        file: String,
        errors: Vec<FieldError>,
    },
}

fn list(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

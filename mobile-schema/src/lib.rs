//! The form language of Đồng Hành: form definitions, answer validation, JSON Schema
//! export for the phones, and the program's bundled forms.
//!
//! The form language arrives with submission intake (issue #3); this crate already
//! exists so the workspace has the shape DESIGN.md describes and the dependency
//! direction (`server → mobile-schema`) is fixed from the start.

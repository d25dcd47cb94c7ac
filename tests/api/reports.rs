//! The indicators report against independently computed figures, and targets.

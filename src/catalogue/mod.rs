//! The live catalogue beside the immutable bundle: items added or updated since training and
//! items taken down, as durable change records ([`changes`]) and as the overlay a request reads
//! ([`overlay`]), resolved against one engine's bundle and swapped whole like the engine.

pub mod changes;
pub mod overlay;

pub use changes::{Change, ChangeSet, Entry, Features, Stamp, StampClock, StampedChange};
pub use overlay::{FeatureVectors, Overlay};

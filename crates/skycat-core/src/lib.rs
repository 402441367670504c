//! skycat-core: the algorithms behind the skycat PostgreSQL extension, in pure Rust.
//!
//! Nothing here knows about PostgreSQL; the extension crate converts between Datums and
//! these types. Angles are ICRS degrees unless a name says otherwise; radii are arcseconds.

pub mod cache;
pub mod chunker;
pub mod crossmatch;
pub mod encoding;
pub mod error;
pub mod files;
pub mod h3cells;
pub mod healpix;
pub mod interrupt;
pub mod lightcurve;
pub mod photometry;
pub mod propagate;
pub mod skybox;
pub mod skykey;
pub mod skymap;
pub mod sphere;
pub mod stripes;
pub mod validate;
pub mod wcs;

pub use error::{SkyError, SkyResult};

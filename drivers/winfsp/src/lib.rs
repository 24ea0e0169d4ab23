//! `strongroom-winfsp`: the WinFsp driver (Windows). A workspace appears as a drive letter or a
//! folder; Explorer and Office work on it through WinFsp's callbacks.
//!
//! - [`volume`]: the Windows semantics (paths, create/open/overwrite, write modes, delete on
//!   cleanup, rename, listings continued from a marker) over [`strongroom_vfs::Vfs`], with no
//!   Windows types, so that they are tested on every platform.
//! - [`status`]: the NTSTATUS of each vfs error kind.
//! - [`names`], [`filetime`]: Windows paths and times.
//! - `driver` (Windows only): the `winfsp_wrs` callbacks, each a conversion and one
//!   [`volume::Volume`] call, and [`mount`].

#![forbid(unsafe_code)]

pub mod filetime;
pub mod names;
pub mod status;
pub mod volume;

#[cfg(windows)]
mod driver;

#[cfg(windows)]
pub use driver::{MountError, Mounted, mount};

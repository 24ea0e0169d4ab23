//! WinFsp's DLL lives where its installer put it, not beside our binary: on Windows the linker
//! is told to load it lazily, after `winfsp_wrs::init` has found it in the registry.

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("windows") {
        winfsp_wrs_build::build();
    }
}

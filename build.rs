//! Names for the two families of kernel pollers, so each list of OSes is written once:
//! `epoll_os` (Linux, Android) and `kqueue_os` (Apple's systems and the BSDs).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(epoll_os)");
    println!("cargo::rustc-check-cfg=cfg(kqueue_os)");
    println!("cargo::rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    match os.as_str() {
        "linux" | "android" => println!("cargo::rustc-cfg=epoll_os"),
        "macos" | "ios" | "tvos" | "watchos" | "visionos" | "freebsd" | "netbsd" | "openbsd"
        | "dragonfly" => {
            println!("cargo::rustc-cfg=kqueue_os")
        }
        _ => {}
    }
}

//! The `homelab` binary: everything lives in the library; see `homelab::cli`.

fn main() -> std::process::ExitCode {
    homelab::cli::main()
}

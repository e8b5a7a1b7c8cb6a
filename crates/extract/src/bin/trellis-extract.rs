//! The extraction worker process (see `trellis_extract::worker`).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    trellis_extract::worker::main(&args)
}

fn main() {
    eprintln!("dplab: not yet");
    std::process::exit(1);
}

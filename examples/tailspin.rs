//! The Tailspin lab: the main job.
fn main() {
    println!("milink {}", milink_core::VERSION);
}

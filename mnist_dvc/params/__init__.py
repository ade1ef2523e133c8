"""params.yaml, section by section: `loading` reads the file and checks any section against its schema; each
other module is one section's schema (a frozen dataclass), so that a stage depends on exactly the schemas it
reads, and a change to one section's rules reruns only the stages that read it. Tools and benchmarks
validate keys against these same types.
"""

"""The wire layer: codecs and state machines with no IO, importing nothing else of ours."""

"""The rendering layer: what a person or a script sees of any kind's events and results.

Progress bars and plain lines on stderr, JSON Lines on stdout, HTML reports. The CLI modules
only parse arguments, call the API and hand events and results to this layer.
"""

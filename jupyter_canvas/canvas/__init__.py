"""The canvas: cells laid out on a 2D plane, one shared Y room per notebook."""

"""What conditions a DTM beside the noisier image: label bits (conditional generation and ``classify``),
a world model's previous frames and action, and layout models (the object's centre drawn from its prior)."""

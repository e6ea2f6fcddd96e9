"""Networks: the recurrent encoder-decoder and the decoder loop that other sequence-to-sequence tasks reuse."""

"""The networks: RecurrentSpec (the validated ``model`` config), RecurrentNet (fused nn.RNN/LSTM/GRU + a
many-to-one or per-step head), CharRNN (embedding -> recurrent layers -> decoder), text sampling, and the
encoder-decoder with the generic decoder loop (seq2seq.py)."""

"""The networks: RecurrentSpec (the validated ``model`` config), RecurrentNet (fused nn.RNN/LSTM/GRU + a
many-to-one or per-step head), CharRNN (embedding -> recurrent layers -> decoder) and text sampling."""

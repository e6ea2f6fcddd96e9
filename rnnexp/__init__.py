"""rnnexp: compare recurrent networks (RNN, LSTM, GRU) with Hydra-composed Lightning experiments."""

__version__ = "0.1.0"

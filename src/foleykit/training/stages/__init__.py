"""Training stages, one module per family: ``autoencoder``, ``vocoder``, ``prior`` (+ the diffusion machinery
shared with ``adapter`` and ``semantic``), ``predictor``; ``base`` holds the Stage contract."""

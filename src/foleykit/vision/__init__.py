"""Pretrained, frozen, offline vision for real footage (the ``scene`` video encoder and its parts).

- :mod:`~foleykit.vision.assets`: fetching the TFLite models at set-up (``foleykit models fetch-vision``:
  PyPI ``mediapipe`` 0.10.21 wheel, npm ``@mediapipe/objectron``), sha256 pins, licences, manifest;
- :mod:`~foleykit.vision.tflite`: the TFLite runtime (``ai-edge-litert``, imported lazily), SSD anchors,
  box decoding, rotated crops;
- :mod:`~foleykit.vision.pose`: BlazePose detection + landmarks, multi-person tracking;
- :mod:`~foleykit.vision.detector`: SSD MobileNetV2 Open Images detector (24 classes) + backbone embedding;
- :mod:`~foleykit.vision.segment`: person mask of a frame (MediaPipe selfie segmentation);
- :mod:`~foleykit.vision.flow`: camera-compensated optical flow, repeated frames, cuts, fades, black bars;
- :mod:`~foleykit.vision.contacts`: velocity drops, direction reversals, feet / hands contacts from keypoints;
- :mod:`~foleykit.vision.encoder`: ``SceneVideoEncoder`` (registered ``video_encoder`` ``scene``);
- :mod:`~foleykit.vision.draw`: debug drawings.

Every model wrapper has a ``Debug*`` twin (deterministic, weight-free, same shapes) for tests.
Nothing here is imported by ``import foleykit``.
"""

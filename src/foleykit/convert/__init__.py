"""Converters from the seed papers' released checkpoints to foleykit model folders.

- :func:`foleykit.convert.rewas.convert_rewas` — ReWaS (AudioLDM-M + energy ControlNet, phi, Synchformer).
- :func:`foleykit.convert.vta_ldm.convert_vta_ldm` — VTA-LDM (diffusers UNet + CLIP frame projector, AudioLDM VAE).

The converters read the released key layouts (latent-diffusion / AudioLDM-training / Synchformer / VTA-LDM
naming), rename every tensor to the matching diffusers / transformers / foleykit module, and write a folder
that ``VideoToAudioPipeline.from_pretrained`` and ``foleykit generate --model`` run with nothing else
installed. Released pickles are read with ``torch.load(weights_only=True)``; see :mod:`.checkpoint`.
Command line: ``foleykit models convert rewas|vta-ldm`` (docs/models.md, "Converting ReWaS" / "Converting
VTA-LDM").
"""

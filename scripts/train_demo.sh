#!/usr/bin/env bash
# Every command that trains the shipped demonstrator (src/foleykit/weights/foleykit-demo), in order, with
# `foleykit train` only (docs/training.md, "Training from a prepared store").
# Hardware: a 2-core CPU (no GPU); each process runs torch with one thread (--threads 1: 2 threads under
# contention are slower than 1 on 2 cores), and independent stages run side by side, each in its own process
# and with its own config (<run>/<stage>.config.yaml). Wall times are in the model card
# (docs/demonstrator_model_card.md).
#
#   scripts/train_demo.sh [WORK]        (WORK defaults to ./demo-work; ~2 h on 2 cores)
set -euo pipefail
WORK=${1:-demo-work}
SYNTH=$WORK/synth
STORE=$WORK/store
RUN=$WORK/run
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
T="foleykit train --recipe foleykit_demo --config full --store $STORE --output $RUN --threads 1"
mkdir -p "$WORK"

# 1. data: the default sound bank (ufoai-sound, split by source file) and synthetic audio-visual clips
foleykit data prepare-bank
foleykit data synth --output "$SYNTH" --num-clips 800 --split train --seed 1 --workers 2
foleykit data synth --output "$SYNTH" --num-clips 60 --split validation --seed 2 --workers 2
foleykit data synth --output "$SYNTH" --num-clips 60 --split test --seed 3 --workers 2

# 2. decode every clip window once into the store; what is kept per clip comes from the recipe's model:
#    audio, the RMS targets, and the video encoder's inputs (motion+frame_cnn: motion statistics at 96 px,
#    frames at 64 px for the trainable CNN; a frozen encoder would have its features stored instead)
foleykit train prepare --data "$SYNTH" --store "$STORE" --recipe foleykit_demo --config full --workers 2 --threads 1

# 3. autoencoder (2 s crops) || predictor (RMS-Mapper + frame CNN on 4 s windows, category auxiliary loss)
$T --stage autoencoder \
  autoencoder.max_steps=800 autoencoder.batch_size=8 autoencoder.lr=3e-4 autoencoder.crop_seconds=2.0 \
  autoencoder.crops_per_clip=5 autoencoder.ckpt_every=200 autoencoder.val_every=200 autoencoder.val_batches=4 \
  > "$WORK/autoencoder.log" 2>&1 &
AE=$!
$T --stage predictor \
  predictor.max_steps=1400 predictor.batch_size=8 predictor.category_weight=0.5 predictor.window_frames=100 \
  predictor.windows_per_clip=2 predictor.ckpt_every=200 predictor.val_every=350 predictor.val_batches=4 \
  > "$WORK/predictor.log" 2>&1
# 4. reference-audio tokens (frozen aisfx) || vocoder (HiFi-GAN, mel L1 x 45 + multi-resolution STFT)
foleykit train tokens --store "$STORE" --recipe foleykit_demo --config full --threads 1 > "$WORK/tokens.log" 2>&1
$T --stage vocoder \
  vocoder.max_steps=14000 vocoder.batch_size=8 vocoder.lr=5e-4 vocoder.ckpt_every=1000 vocoder.val_every=1000 \
  vocoder.val_batches=2 > "$WORK/vocoder.log" 2>&1 &
VOC=$!
wait $AE

# 5. one model folder (predictor + VAE); latent scaling factor, cached latents and video features
foleykit train merge --run "$RUN" --output "$RUN/base"
foleykit train cache --store "$STORE" --model "$RUN/base" --threads 1

# 6. the diffusion model: DiT prior and its RMS ControlNet trained jointly; control dropout 0.3 teaches the
#    same base to denoise without the adapter (the no-control twin); text dropout 0.3 so that the pooled video
#    tokens carry WHAT sounds when no prompt is given. (The shipped run reached 2,400 steps in two sittings:
#    1,200 steps, then the same command with --resume and max_steps=2400; the trainer resumes exactly.)
$T --stage denoiser --init "$RUN/base" \
  "denoiser.trainable=[transformer,projection_model,condition_assembler,video_condition,controlnet_rms,control_encoder_rms]" \
  denoiser.max_steps=2400 denoiser.batch_size=8 denoiser.lr=3e-4 denoiser.warmup_steps=100 denoiser.snr_gamma=5 \
  denoiser.control_dropout=0.3 "denoiser.cond_dropout={text: 0.3, video: 0.1, audio: 0.5}" \
  denoiser.ckpt_every=200 denoiser.val_every=400 denoiser.val_batches=4 > "$WORK/denoiser.log" 2>&1
wait $VOC

# 7. ship: fp16 safetensors + model card; the adapter weight (2.0) and the RMS-Mapper's silence threshold (0.3)
#    were chosen on the validation split (benchmarks/eval_demo.py generate/score/mapper on SYNTH/validation)
foleykit train ship --model "$RUN/denoiser/model" --vocoder "$RUN/vocoder/model" \
  --output src/foleykit/weights/foleykit-demo --adapter-weight 2.0 --silence-threshold 0.3 \
  --card docs/demonstrator_model_card.md

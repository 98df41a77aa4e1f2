#!/usr/bin/env bash
# The paper's whole chain on synthetic corpora (make recipe-synthetic). Every stage is resumable:
# re-running skips finished work, and training resumes from its checkpoints.
#
#   WORK=work/synthetic N_SPEECH=4000 N_SONGS=400 PRESET=small SEPARATOR=train bash recipes/run_synthetic.sh
#
# The default budget is fixed, so the chain's length is known in advance: each training stage runs
# its epochs in full (PRETRAIN_EPOCHS (3) on speech, EPOCHS (3) for each song stage) with the
# learning rate on a cosine to LR_FINAL (0.1) x 5e-4 at the last step (LR_DECAY=constant with
# EPOCHS=100 gives the paper's early stopping on validation WER instead: most of a day on 2 cores).
# Other sizes: N_SPEECH_DEV (200), N_DEV (40), N_TEST (100) songs, SONG_SECONDS ("12 16": song
# lengths drawn between; default: synth's own), SELECT_THRESHOLD (0.5, the paper's largest
# framewise pitch error of a kept song; the selection stops the chain when it keeps no song).
#
# The last stage assembles the chain's result as a release bundle in $WORK/bundle (LM, tuned
# decoding, audio-text head: HEADS_EPOCHS (10), HEADS_FLAGS for recipes/heads_train.py; LABEL).
#
# TRAIN_FLAGS go to every training run (default --compile: torch.compile the CNNs, 2-3x faster CPU
# steps, plus --cpu-bf16 where /proc/cpuinfo shows native bf16 (avx512_bf16 or amx_bf16); set it
# empty without a C++ compiler).
# SEPARATOR=train trains an Open-Unmix vocals model on the synthetic stems (SEP_STEPS (1000) steps)
# and uses it for every song, separating each song once: the features, the data selection, the
# evaluations and the tuning all read that cache ($WORK/vocals); SEPARATOR=none uses the mixture in
# both input channels. Separation and features run as SHARDS (2) processes side by side, THREADS (1)
# torch threads each; synthesis runs a process per core by itself.
# Each stage's wall-clock seconds are appended to $WORK/stage_times.tsv (one block per run; a resumed
# run's stages are quick where their work was done).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-work/synthetic}
N_SPEECH=${N_SPEECH:-4000}
N_SONGS=${N_SONGS:-400}
N_SPEECH_DEV=${N_SPEECH_DEV:-200}
N_DEV=${N_DEV:-40}
N_TEST=${N_TEST:-100}
PRESET=${PRESET:-small}
SEPARATOR=${SEPARATOR:-train}
SEP_STEPS=${SEP_STEPS:-1000}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-3}
EPOCHS=${EPOCHS:-3}
LR_DECAY=${LR_DECAY:-cosine}
LR_FINAL=${LR_FINAL:-0.1}
SHARDS=${SHARDS:-2}
THREADS=${THREADS:-1}
SELECT_THRESHOLD=${SELECT_THRESHOLD:-0.5}
SONG_SECONDS=${SONG_SECONDS:-}
if grep -q -E "avx512_bf16|amx_bf16" /proc/cpuinfo 2>/dev/null; then BF16=--cpu-bf16; else BF16=""; fi
TRAIN_FLAGS=${TRAIN_FLAGS---compile $BF16}
HEADS_EPOCHS=${HEADS_EPOCHS:-10}
HEADS_FLAGS=${HEADS_FLAGS:-}
LABEL=${LABEL:-"trained on synthetic singing (make recipe-synthetic), not a model of real songs"}
S="$PY -m singalign.cli"
M=$WORK/manifests
P=$WORK/prep
R=$WORK/runs
mkdir -p "$WORK"
TIMES=$WORK/stage_times.tsv
printf '# run started %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >> "$TIMES"
STAGE=""
T0=$SECONDS
stage() {  # close the running stage (its seconds to $TIMES), open the next one
  [ -n "$STAGE" ] && printf '%s\t%d\n' "$STAGE" $((SECONDS - T0)) >> "$TIMES"
  STAGE=$1
  T0=$SECONDS
}
sharded() {  # run a shardable recipe as $SHARDS processes side by side (--shard i/n --threads), wait for all
  local pids=() i
  for ((i = 0; i < SHARDS; i++)); do "$@" --shard "$i/$SHARDS" --threads "$THREADS" & pids+=($!); done
  for i in "${pids[@]}"; do wait "$i"; done
}
TRAIN="--lr-decay $LR_DECAY --lr-final $LR_FINAL --save-every-steps 50"
set -x
stage corpora
# 1. corpora (LibriSpeech and DALI/JamendoLyrics layouts); dev/test use held-out voices and text
$S synth speech --out $WORK/speech --n "$N_SPEECH" --seed 1 --split train-clean --utterances-per-chapter 20
$S synth speech --out $WORK/speech --n "$N_SPEECH_DEV" --seed 2 --split dev-clean --utterances-per-chapter 20
$S synth songs --out $WORK/songs_train --n "$N_SONGS" --seed 10 --split train ${SONG_SECONDS:+--seconds $SONG_SECONDS}
$S synth songs --out $WORK/songs_dev --n "$N_DEV" --seed 20 --split dev ${SONG_SECONDS:+--seconds $SONG_SECONDS}
$S synth songs --out $WORK/songs_test --n "$N_TEST" --seed 30 --split test ${SONG_SECONDS:+--seconds $SONG_SECONDS}
stage manifests
# 2. manifests, read by the real readers
$PY recipes/manifest.py --corpus librispeech --root $WORK/speech --split train-clean --out $M/speech_train.jsonl
$PY recipes/manifest.py --corpus librispeech --root $WORK/speech --split dev-clean --out $M/speech_dev.jsonl
for s in train dev test; do
  $PY recipes/manifest.py --corpus dali --root $WORK/songs_$s/dali --split $s --out $M/songs_$s.jsonl
done
stage separation
# 3. separation
VOC=""
SEPTRAIN=""
if [ "$SEPARATOR" = train ]; then
  $PY recipes/train_separator.py --stems $WORK/songs_train/stems --out $WORK/separator --steps "$SEP_STEPS"
  $PY recipes/eval_separator.py --stems $WORK/songs_test/stems --separator $WORK/separator --out $WORK/eval/separator
  for s in train dev test; do
    sharded $PY recipes/separate.py --manifest $M/songs_$s.jsonl --separator $WORK/separator --out $WORK/vocals
  done
  VOC="--vocals $WORK/vocals"
  SEPTRAIN="--separator $WORK/separator"
fi
# what the stages that run the full pipeline read: the vocals cache, or the mixture
SEPFLAG=$([ "$SEPARATOR" = train ] && echo "--vocals $WORK/vocals" || echo --no-separation)
stage features
# 4. features and frame targets (songs cut between words)
features() {  # features OUT ARGS...: features.py in shards into OUT, then the list of its items
  local out=$1
  shift
  sharded $PY recipes/features.py --out "$out" "$@"
  $PY recipes/features.py --out "$out" --finalize
}
features $P/speech_train --manifest $M/speech_train.jsonl
features $P/speech_dev --manifest $M/speech_dev.jsonl
for s in train dev test; do features $P/songs_$s --manifest $M/songs_$s.jsonl $VOC; done
stage pretrain
# 5. pretraining on speech (zero pitch/onset input)
$PY recipes/train.py --train $P/speech_train --valid $P/speech_dev --out $R/pretrain --preset $PRESET \
    --mode baseline --speech-per-batch 0 --epochs "$PRETRAIN_EPOCHS" $TRAIN $SEPTRAIN $TRAIN_FLAGS
stage pitch_and_select
# 6. the pitch model (pitch_onset_only), then the paper's data selection with it: the best global
#    shift per song and a 50% framewise-error threshold. Synthetic labels are exact, so every song
#    should be kept unshifted; the planted check on the dev songs shows the faults it catches.
$PY recipes/train.py --train $P/songs_train $P/speech_train --valid $P/songs_dev --out $R/pitch_onset_only \
    --preset $PRESET --mode pitch_onset_only --init-from $R/pretrain/best --epochs "$EPOCHS" $TRAIN $SEPTRAIN $TRAIN_FLAGS
$PY recipes/select_songs.py --manifest $M/songs_train.jsonl --bundle $R/pitch_onset_only/best $SEPFLAG \
    --threshold "$SELECT_THRESHOLD" --out $M/songs_train_selected.jsonl
$PY recipes/select_songs.py --manifest $M/songs_dev.jsonl --bundle $R/pitch_onset_only/best $SEPFLAG \
    --threshold "$SELECT_THRESHOLD" --out $WORK/select_check/songs_dev.jsonl --plant 0.3
features $P/songs_train_selected --manifest $M/songs_train_selected.jsonl $VOC
stage finetune
# 7. fine-tuning the other modes on the selected songs + speech
for mode in baseline oracle multitask; do
  $PY recipes/train.py --train $P/songs_train_selected $P/speech_train --valid $P/songs_dev --out $R/$mode \
      --preset $PRESET --mode $mode --init-from $R/pretrain/best --epochs "$EPOCHS" $TRAIN $SEPTRAIN $TRAIN_FLAGS
done
stage evaluate
# 8. evaluation on the held-out test songs (whole songs through the full pipeline)
$PY recipes/evaluate.py --manifest $M/songs_test.jsonl --bundle $R/baseline/best $R/multitask/best \
    $R/pitch_onset_only/best --label baseline multitask pitch_onset_only --greedy $SEPFLAG --out $WORK/eval
# the paper's Table 1 with the oracle (true notes; on the prepared test segments, the same items for all)
$PY recipes/evaluate.py --prepared $P/songs_test --bundle $R/baseline/best $R/oracle/best $R/multitask/best \
    --label baseline oracle multitask --greedy --out $WORK/eval/table1
stage bundle
# 9. the chain's result as a release bundle ($WORK/bundle, what `singalign transcribe --bundle` and
#    `make_bundle.py --from $WORK/bundle --out singalign/resources/bundles/default` take): the
#    multitask weights with the separator and the default LM; beam search's LM weight and word bonus
#    and the note decoding tuned on the dev songs; the audio-text head trained on the frozen encoder
#    (train songs' segments, dev songs for the epoch); then the full pipeline on the test songs with
#    it (greedy, beam + LM, forced alignment) and the training report stored in the bundle.
LMDIR=$WORK/lm
[ -f "$LMDIR/lm.json" ] || $S lm build --default --out "$LMDIR" --quiet
B=$WORK/bundle_stages
$PY recipes/make_bundle.py --from $R/multitask/best $SEPTRAIN --lm "$LMDIR" --out $B/untuned
$PY recipes/tune_lm.py --bundle $B/untuned --manifest $M/songs_dev.jsonl $SEPFLAG --out $WORK/eval/tune_lm.json \
    --save-bundle $B/tuned
$PY recipes/tune_notes.py --bundle $B/tuned --manifest $M/songs_dev.jsonl $SEPFLAG --out $WORK/eval/tune_notes.json \
    --save-bundle $B/tuned
$PY recipes/heads_train.py --bundle $B/tuned --train $P/songs_train_selected --valid $P/songs_dev \
    --metadata $WORK/songs_train/metadata.jsonl $WORK/songs_dev/metadata.jsonl --out $R/heads \
    --epochs "$HEADS_EPOCHS" $HEADS_FLAGS
$PY recipes/evaluate.py --manifest $M/songs_test.jsonl --bundle $R/heads/best --also greedy beam --align $SEPFLAG \
    --out $WORK/eval/bundle
$PY recipes/report.py --run $R/pretrain $R/multitask --eval $WORK/eval/bundle/summary.json \
    --note "$LABEL" --out $B/REPORT.txt
$PY recipes/make_bundle.py --from $R/heads/best --report $B/REPORT.txt --label "$LABEL" --out $WORK/bundle
stage ""
echo "stage times (s): $TIMES"
echo "done: see $WORK/eval/tables.txt, $WORK/eval/table1/tables.txt and $WORK/eval/bundle/tables.txt;"
echo "the bundle: $WORK/bundle"

#!/usr/bin/env bash
# Turns the CSV files of full runs of the examples into PNG figures (gnuplot).
#
#   examples/plot.sh [--run BIN_DIR] [CSV_DIR] [FIG_DIR]
#
# --run BIN_DIR  first runs the five example programs found in BIN_DIR (e.g.
#                build/examples) in full mode, writing their CSV files into CSV_DIR.
# CSV_DIR        where the CSV files are (default: ./example-csv)
# FIG_DIR        where the PNGs go (default: the figures/ folder next to this script)
#
# Needs gnuplot (Debian: apt-get install -y gnuplot-nox); the examples themselves do not.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=""
if [[ ${1:-} == --run ]]; then
  bin=${2:?--run needs the folder of the example programs}
  shift 2
fi
csv=${1:-example-csv}
fig=${2:-$here/figures}
mkdir -p "$csv" "$fig"

if [[ -n $bin ]]; then
  for e in deep_mlp_gradients rnn_through_time adding_problem learning_rate_optimizers \
           overfitting_remedies; do
    echo "== $e"
    "$bin/$e" --out "$csv"
  done
fi

command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (apt-get install -y gnuplot-nox)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# split FILE KEYS X Y: one whitespace-separated data file per distinct value of the key
# columns (comma-separated column numbers), named after the key, columns X and Y.
split() {
  local file=$1 keys=$2 x=$3 y=$4
  awk -F, -v d="$tmp" -v keys="$keys" -v x="$x" -v y="$y" '
    NR == 1 { next }
    { gsub(/"/, "");
      n = split(keys, k, ","); name = "";
      for (i = 1; i <= n; ++i) name = name (i > 1 ? "_" : "") $k[i];
      gsub(/[^A-Za-z0-9._-]/, "_", name);
      print $x, $y > (d "/" name ".dat") }' "$file"
}

common='set terminal pngcairo size 1000,640 enhanced font "DejaVu Sans,11"
set grid lc rgb "#dddddd"
set key outside right top box opaque
set format y "10^{%L}"'

# ---- 01: per-layer gradient norms, at init and after training
split "$csv/01_layer_grad_norms.csv" 1,2 3 4
gnuplot <<EOF
$common
set terminal pngcairo size 1300,560 enhanced font "DejaVu Sans,11"
set output "$fig/01_layer_grad_norms.png"
set multiplot layout 1,2 title "01 - 20-layer MLP: ||dL/dW_l|| per hidden layer (log scale)" font ",13"
set logscale y
set xlabel "hidden layer l (1 = next to the input)"
set ylabel "||dL/dW_l|| (Frobenius norm)"
set xrange [1:20]
set key off
set title "at initialization"
configs = "sigmoid_normal sigmoid_xavier tanh_xavier relu_he relu_he_bn relu_he_residual"
labels = "sigmoid,N(0,1) sigmoid,Xavier tanh,Xavier ReLU,He ReLU,He+BN ReLU,He,residual"
plot for [i=1:6] sprintf("$tmp/%s_init.dat", word(configs, i)) w lp pt 7 ps 0.6 lw 2 title word(labels, i)
set title "after training"
set key outside right center box
plot for [i=1:6] sprintf("$tmp/%s_trained.dat", word(configs, i)) w lp pt 7 ps 0.6 lw 2 title word(labels, i)
unset multiplot
EOF
rm -f "$tmp"/*.dat

# ---- 02: ||dL/dh_t|| over t for the three radii; training with and without clipping
split "$csv/02_hidden_grad_norms.csv" 1,2 3 4
gnuplot <<EOF
$common
set output "$fig/02_hidden_grad_norms.png"
set title "02 - Gradient through time: ||dL/dh_t|| for a loss on the last step t = 59" font ",13"
set logscale y
set xlabel "time step t"
set ylabel "||dL/dh_t|| (Frobenius norm over the batch)"
plot "$tmp/linear_0.5.dat" w l lw 2 lc 1 title "linear, {/Symbol r}(W) = 0.5", \
     "$tmp/linear_1.dat"   w l lw 2 lc 2 title "linear, {/Symbol r}(W) = 1.0", \
     "$tmp/linear_1.5.dat" w l lw 2 lc 7 title "linear, {/Symbol r}(W) = 1.5", \
     "$tmp/tanh_0.5.dat"   w l lw 2 lc 1 dt 2 title "tanh, {/Symbol r}(W) = 0.5", \
     "$tmp/tanh_1.dat"     w l lw 2 lc 2 dt 2 title "tanh, {/Symbol r}(W) = 1.0", \
     "$tmp/tanh_1.5.dat"   w l lw 2 lc 7 dt 2 title "tanh, {/Symbol r}(W) = 1.5"
EOF
rm -f "$tmp"/*.dat
split "$csv/02_clipping_training.csv" 1 2 3
gnuplot <<EOF
$common
set output "$fig/02_clipping_training.png"
set title "02 - ReLU RNN, SGD lr 0.1: training loss with and without gradient clipping" font ",13"
set logscale y
set xlabel "training step"
set ylabel "MSE loss (log scale)"
set label 1 "no clipping: Inf after 7 steps\n(caught by AnomalyGuard)" at graph 0.03, graph 0.92 tc lt 7
plot "$tmp/no_clipping.dat" w lp lw 2 pt 7 lc 7 title "no clipping, lr 0.1", \
     "$tmp/clip_grad_norm__1.0.dat" w l lw 1.5 lc 2 title "clip\\\_grad\\\_norm\\\_ 1.0, lr 0.1", \
     "$tmp/clip_grad_value__0.05.dat" w l lw 1.5 lc 3 title "clip\\\_grad\\\_value\\\_ 0.05, lr 0.1", \
     "$tmp/no_clipping__lr_10_.dat" w l lw 1.5 lc 1 title "no clipping, lr 0.01", \
     0.8 w l lw 1 dt 2 lc rgb "black" title "predict 0"
EOF
rm -f "$tmp"/*.dat

# ---- 03: adding problem, final MSE against T, and validation curves
split "$csv/03_adding_summary.csv" 1 2 4
split "$csv/03_adding_curves.csv" 1,2 3 4
lengths=$(awk -F, 'NR > 1 { print $2 }' "$csv/03_adding_summary.csv" | sort -nu | tr '\n' ' ')
gnuplot <<EOF
$common
set terminal pngcairo size 1300,560 enhanced font "DejaVu Sans,11"
set output "$fig/03_adding_problem.png"
set multiplot layout 1,2 title "03 - Adding problem (Hochreiter and Schmidhuber 1997): held-out MSE" font ",13"
set logscale y
set yrange [5e-5:0.5]
set xrange [5:55]
set title "final MSE against sequence length"
set xlabel "sequence length T (steps)"
set ylabel "MSE on 512 held-out sequences (log scale)"
set key at graph 0.98, graph 0.6 right top box opaque
plot "$tmp/RNN.dat" w lp lw 2 pt 7 title "vanilla RNN", \
     "$tmp/LSTM.dat" w lp lw 2 pt 5 title "LSTM", \
     "$tmp/GRU.dat" w lp lw 2 pt 9 title "GRU", \
     1.0/6 w l dt 2 lw 2 lc rgb "black" title "baseline 0.167 (answer 1)"
set title "validation MSE during training"
set xlabel "training step (batches of 32 sequences)"
set autoscale x
set key outside right top box
lengths = "$lengths"
plot for [i=1:words(lengths)] sprintf("$tmp/RNN_%s.dat", word(lengths, i)) w l lw 2 lc 1 dt i title sprintf("RNN, T = %s", word(lengths, i)), \
     for [i=1:words(lengths)] sprintf("$tmp/LSTM_%s.dat", word(lengths, i)) w l lw 2 lc 2 dt i title sprintf("LSTM, T = %s", word(lengths, i)), \
     for [i=1:words(lengths)] sprintf("$tmp/GRU_%s.dat", word(lengths, i)) w l lw 2 lc 3 dt i title sprintf("GRU, T = %s", word(lengths, i)), \
     1.0/6 w l dt 2 lw 1 lc rgb "black" title "baseline 0.167"
unset multiplot
EOF
rm -f "$tmp"/*.dat

# ---- 04: training loss per optimizer / schedule
split "$csv/04_loss_curves.csv" 1 2 3
runs=$(awk -F, 'NR > 1 { print $1 }' "$csv/04_loss_curves.csv" | awk '!seen[$0]++')
# SGD runs solid, the adaptive optimizers dashed; a diverged run is a single point.
colors=(dummy "#9400d3" "#009e73" "#56b4e9" "#e69f00" "#f0e442" "#0072b2" "#e51e10" "#000000"
        "#ff00ff" "#8b4513" "#708090")
plot=""
i=0
for r in $runs; do
  i=$((i + 1))
  dt=1; [[ $r == sgd* ]] || dt=2
  case $r in
    sgd_1.0) t="SGD lr 1.0 (Inf at step 6)";;
    sgd_0.5) t="SGD lr 0.5";;
    sgd_0.05) t="SGD lr 0.05";;
    sgd_0.5_expdecay) t="SGD lr 0.5, exp. decay";;
    sgd_0.5_warmup_cosine) t="SGD lr 0.5, warm-up + cosine";;
    sgd_0.05_stepdecay) t="SGD lr 0.05, step decay";;
    sgd_momentum) t="SGD + momentum 0.9, lr 0.02";;
    adam_1e-2) t="Adam lr 1e-2";;
    adam_3e-3) t="Adam lr 3e-3";;
    rmsprop_1e-3) t="RMSprop lr 1e-3";;
    adagrad_5e-2) t="Adagrad lr 5e-2";;
    *) t=${r//_/ };;
  esac
  plot+="${plot:+, }\"$tmp/$r.dat\" w lp lw 2 pt 7 ps 0.5 pi 60 lc rgb \"${colors[i]:-black}\" dt $dt title \"$t\""
done
gnuplot <<EOF
$common
set terminal pngcairo size 1100,640 enhanced font "DejaVu Sans,11"
set output "$fig/04_loss_curves.png"
set title "04 - ReLU MLP regression: training loss per optimizer and learning-rate schedule" font ",13"
set logscale y
set yrange [5e-4:1e1]
set xlabel "training step (mini-batches of 64)"
set ylabel "training MSE, mean over each epoch (log scale)"
plot $plot, 0.026 w l lw 1 lc rgb "black" dt 3 title "noise floor"
EOF
rm -f "$tmp"/*.dat

# ---- 05: train and validation curves
split "$csv/05_train_val_curves.csv" 1 2 3
for f in "$tmp"/*.dat; do mv "$f" "${f%.dat}.train"; done
split "$csv/05_train_val_curves.csv" 1 2 4
kept=$(sort -k2 -g "$tmp/early_stopping.dat" | head -n 1 | cut -d' ' -f1)  # its best epoch
gnuplot <<EOF
$common
set output "$fig/05_train_val_curves.png"
set title "05 - Overfitting on 100 noisy samples: training (dashed) and validation (solid) MSE" font ",13"
set logscale y
set xlabel "epoch (4 mini-batches of 25)"
set ylabel "MSE in evaluation mode (log scale)"
set yrange [0.02:1]
set key outside right top box noenhanced
configs = "none dropout l2 early_stopping batch_norm"
labels = "'no remedy' 'dropout 0.5' 'L2 1e-2' 'early stopping' 'batch norm'"
set arrow 1 from $kept, graph 0 to $kept, graph 1 nohead dt 2 lw 2 lc rgb "#e69f00"
set label 1 "early stopping keeps epoch $kept" at $kept, graph 0.04 offset 1,0 tc lt 4
plot for [i=1:5] sprintf("$tmp/%s.dat", word(configs, i)) w l lw (i == 4 ? 4 : 2) lc i title word(labels, i)." (validation)", \\
     for [i=1:5] sprintf("$tmp/%s.train", word(configs, i)) w l lw 1.5 lc i dt 2 title word(labels, i)." (train)", \\
     0.25 w l lw 1 lc rgb "black" dt 3 title "noise variance 0.25"
EOF

echo "figures in $fig:"
ls "$fig"

//! A short run on real MNIST learns; same seed gives the same bits.

use glorot_mlp::{
    Activation, EvalData, FitData, Head, Init, ModelConfig, NoopObserver, Precision, Shuffle,
    Status, TrainConfig, TrainData, train,
};
use ndarray::s;

use crate::support;

/// 4,000 training images, 2,000 validation images, one epoch of the notebook's network
/// shape at a smaller width, shuffled, f32: validation accuracy far above chance (10%).
/// Under emulation (`GLOROT_TEST_EMULATED=1`, see `support::emulated`) less: 2,000
/// training, 500 validation and 1,000 test images.
#[test]
fn one_epoch_on_a_few_thousand_images_learns() {
    let Some(mnist) = support::mnist("one_epoch_on_a_few_thousand_images_learns") else {
        return;
    };
    let emulated = support::emulated();
    let (n, n_val, n_test) = if emulated {
        (2_000, 500, 1_000)
    } else {
        (4_000, 2_000, mnist.test.labels.len())
    };
    let x = mnist.train.images.slice(s![..n, ..]);
    let y = mnist.train.one_hot_labels::<f32>();
    let val_x = mnist.validation.images.slice(s![..n_val, ..]);
    let val_labels = &mnist.validation.labels[..n_val];
    let test_x = mnist.test.images.slice(s![..n_test, ..]);
    let data = FitData {
        train: TrainData::new(x, y.slice(s![..n, ..])).unwrap(),
        validation: EvalData::new(val_x, val_labels).unwrap(),
        test: Some(EvalData::new(test_x, &mnist.test.labels[..n_test]).unwrap()),
    };
    let model = ModelConfig {
        layers: vec![784, 100, 100, 10],
        activation: Activation::Tanh,
        head: Head::SigmoidBce,
        init: Init::GlorotUniform,
    }
    .validate()
    .unwrap();
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 32,
        learning_rate: 0.1,
        seed: 1,
        shuffle: Shuffle::EveryEpoch,
        precision: Precision::F32,
        ..TrainConfig::default()
    }
    .validate()
    .unwrap();
    let (mlp_a, a) = train::<f32>(&model, &cfg, &data, &mut NoopObserver).unwrap();
    assert_eq!(a.status, Status::Completed);
    let acc = a.final_val_accuracy().unwrap();
    // Chance is 10%; one epoch on 4,000 images reaches well above 80% (measured 86.65%,
    // test 86.97%, with Debian's OpenBLAS); the emulated run's 2,000 images reach well
    // above 60% (measured on x86-64: 70.6%, test 68.2%).
    let bound = if emulated { 60.0 } else { 75.0 };
    assert!(acc > bound, "validation accuracy {acc}");
    let test = a.test_accuracy.unwrap();
    assert!(test > bound, "test accuracy {test}");

    // Same seed, precision and thread count: bit-identical.
    let (mlp_b, b) = train::<f32>(&model, &cfg, &data, &mut NoopObserver).unwrap();
    assert_eq!(mlp_a, mlp_b);
    assert_eq!(
        a.epochs[0].train_loss.to_bits(),
        b.epochs[0].train_loss.to_bits()
    );
    assert_eq!(
        a.epochs[0].val_loss.to_bits(),
        b.epochs[0].val_loss.to_bits()
    );
}

"""The spiking toolkit plugins build on: conversion, the time loop, calibration, encoders, efficiency."""

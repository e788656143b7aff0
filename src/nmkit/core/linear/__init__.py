"""Linear solvers for SPD systems on grids: CG, PCG (Jacobi, incomplete factorisation, AMG) and the Deep
Conjugate Direction Method with a learned direction generator."""

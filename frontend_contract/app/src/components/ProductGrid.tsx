import { Link } from 'react-router-dom';
import { Money } from './ui';
import type { MoneyLike } from '../lib/money';

export interface GridProduct {
  id: string;
  sku: string;
  name: string;
  imageUrl?: string | null;
  inStock: boolean;
  price: MoneyLike;
  category?: { name: string } | null;
}

export function ProductGrid({ products, label }: { products: readonly GridProduct[]; label: string }) {
  if (products.length === 0) return <p>No products match.</p>;
  return (
    <ul className="product-grid" aria-label={label}>
      {products.map((p) => (
        <li key={p.id} className="product-card" data-testid="product-card">
          <Link to={`/p/${encodeURIComponent(p.sku)}`}>
            <span className="thumb" aria-hidden="true">
              {p.name.charAt(0)}
            </span>
            <span className="name">{p.name}</span>
          </Link>
          {p.category && <span className="muted small">{p.category.name}</span>}
          <span className="price">
            <Money value={p.price} />
          </span>
          {!p.inStock && <span className="out-of-stock">Out of stock</span>}
        </li>
      ))}
    </ul>
  );
}

import { Link } from 'react-router-dom';
import { Money } from './ui';
import type { MoneyLike } from '../lib/money';

export interface GridProduct {
  id: string;
  sku: string;
  name: string;
  imageUrl?: string | null;
  featuredImage?: { url: string; srcset: string; altText: string } | null;
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
            {p.featuredImage ? (
              <img
                className="thumb"
                src={p.featuredImage.url}
                srcSet={p.featuredImage.srcset}
                sizes="(max-width: 600px) 50vw, 240px"
                alt=""
                loading="lazy"
                width={240}
                height={240}
              />
            ) : (
              <span className="thumb" aria-hidden="true">
                {p.name.charAt(0)}
              </span>
            )}
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
